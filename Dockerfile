# One image for web (uvicorn), worker and beat (celery); see compose.yaml. Runs from the source
# tree in /app (pip install . brings the pinned dependencies), so data files such as
# proxy/catalog/catalog.json are where settings expect them.
FROM python:3.11-slim

# PYTHONPATH: every process (uvicorn, celery, manage.py) imports the source in /app, not the copy
# `pip install .` leaves in site-packages, whose BASE_DIR has no templates/, static/ or var/.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
RUN pip install . \
    && mkdir -p var \
    && SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && useradd --create-home --uid 10001 app \
    && chown -R app:app /app/var

USER app
EXPOSE 8000
CMD ["uvicorn", "openrouter_site.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
