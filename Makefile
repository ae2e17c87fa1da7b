# The two commands a newcomer needs:
#   make run    set up a virtualenv, migrate, load the catalog, create a demo org + key, serve on HOST:PORT
#               (default 127.0.0.1:8000; reads .env when present, e.g. `make run PORT=8100` also works)
#   make test   lint, type-check and run the whole test suite on the machine's PostgreSQL and Redis
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test install lint typecheck pytest catalog bench

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# manage.py reads .env itself (before settings), so every step and the server see the same configuration.
run: $(STAMP)
	@if [ -f .env ]; then echo "make run: reading .env (variables set in the environment win)"; \
		else echo "make run: no .env file, using the embedded defaults (see .env.example)"; fi
	@mkdir -p var/staticfiles
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py catalog_load
	$(BIN)/python manage.py demo_setup
	$(BIN)/python manage.py serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# Rebuild proxy/catalog/catalog.json from the snapshots in ../shared/data (or SNAPSHOTS=dir).
catalog: $(STAMP)
	$(BIN)/python -m proxy.catalog.build $(if $(SNAPSHOTS),--snapshots $(SNAPSHOTS))

bench: $(STAMP)
	$(BIN)/python benchmarks/gateway.py
