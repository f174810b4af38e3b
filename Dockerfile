# The aep-activator image: one image for the worker, beat, Flower and the simulator (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 app

# Only what the package needs: never .env (secrets) or a local .venv.
COPY pyproject.toml README.md ./
COPY aep ./aep
COPY config ./config
COPY tasks ./tasks
COPY workers ./workers
COPY examples ./examples
RUN pip install . \
    && mkdir -p /app/.flower \
    && chown app:app /app/.flower

USER app
# Cron times and quota windows are UTC; the start-up self-checks warn about any other TZ.
ENV TZ=UTC
CMD ["aep-activator", "--help"]
