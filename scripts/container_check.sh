#!/usr/bin/env bash
# Container build check: builds the Dockerfile (and checks compose.yaml) when a container engine answers;
# otherwise prints exactly why it did not, never skipping silently.
#   bash scripts/container_check.sh            exit 0 when built, or when skipped with a SKIPPED: line
#   REQUIRE_CONTAINER_BUILD=1 bash scripts/...  a skip is a failure (exit 3), for machines with an engine
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${TAG:-openrouter-site:check}"

skip() {
  echo "container-check: SKIPPED: $*"
  if [ "${REQUIRE_CONTAINER_BUILD:-}" = "1" ]; then exit 3; fi
  exit 0
}

engine=""
reasons=()
for candidate in docker podman; do
  if command -v "$candidate" >/dev/null 2>&1; then
    if "$candidate" version --format '{{.Server.Version}}' >/dev/null 2>&1; then
      engine="$candidate"
      break
    fi
    why="$("$candidate" version --format '{{.Server.Version}}' 2>&1 | tail -n 1 || true)"
    reasons+=("$candidate is installed but its engine does not answer ($why)")
  fi
done
if [ -z "$engine" ]; then
  if [ "${#reasons[@]}" -eq 0 ]; then skip "no container engine installed (docker or podman)"; fi
  skip "${reasons[*]}"
fi

echo "container-check: building $TAG with $engine"
"$engine" build -t "$TAG" .
# The image starts: the ASGI application imports with the image's own dependencies and settings.
"$engine" run --rm -e SECRET_KEY=container-check "$TAG" python -c "import openrouter_site.asgi; print('asgi ok')"
"$engine" run --rm "$TAG" celery -A openrouter_site inspect --help >/dev/null
if "$engine" compose version >/dev/null 2>&1; then
  "$engine" compose -f compose.yaml config --quiet
  echo "container-check: compose.yaml is valid"
fi
echo "container-check: OK ($TAG built and started)"
