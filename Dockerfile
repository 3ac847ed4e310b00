# syntax=docker/dockerfile:1
# genai-flywheel production image: one image for the mlflow server and every Airflow component of
# docker-compose.yml (api-server, scheduler, dag-processor, triggerer, Celery workers, the init job).
#
#   docker compose build                     # or: docker build -t genai-flywheel:latest .
#
# Dependencies come from uv.lock (uv sync --frozen): the image runs exactly the versions the tests ran.
FROM python:3.11-slim-bookworm

# Same uv as the Makefile (UV_VERSION there): one resolver behaviour for developers, CI and the image.
ARG UV_VERSION=0.13.9
# The CeleryExecutor, its Redis broker and PostgreSQL need apache-airflow-providers-celery, redis and
# psycopg2-binary: pyproject.toml's `production` extra.
#   true (default): install them from uv.lock's `production` extra (`uv sync --extra production`);
#   false: install them from deploy/requirements-production.txt, exact pins constrained to uv.lock
#          (for images built from a lock file without the extra).
ARG FLYWHEEL_PRODUCTION_EXTRA=true

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    AIRFLOW_HOME=/opt/airflow \
    PATH=/opt/venv/bin:$PATH

# curl for the HTTP healthchecks of docker-compose.yml; nothing else comes from apt.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && pip install "uv==${UV_VERSION}"

WORKDIR /opt/flywheel

# 1. Third-party dependencies only (no project source yet): this layer is rebuilt only when the lock
#    file changes, not on every source edit. Bytecode is compiled here because every Airflow task is a
#    fresh process that would otherwise recompile mlflow and airflow at import.
COPY pyproject.toml uv.lock README.md ./
COPY deploy/requirements-production.txt deploy/requirements-production.txt
# With FLYWHEEL_PRODUCTION_EXTRA=false, the production drivers (not yet in uv.lock, see the ARG above) come
# from a separate, pinned `uv pip install` constrained to the lock file's versions (`uv export`).
RUN --mount=type=cache,target=/root/.cache/uv \
    set -eu; \
    if [ "${FLYWHEEL_PRODUCTION_EXTRA}" = "true" ]; then \
        uv sync --frozen --no-dev --no-install-project --compile-bytecode --extra production; \
    else \
        uv sync --frozen --no-dev --no-install-project --compile-bytecode; \
        uv export --frozen --no-dev --no-emit-project --no-hashes --quiet -o /tmp/uv-lock-constraints.txt; \
        uv pip install --python /opt/venv/bin/python --compile-bytecode \
            --constraints /tmp/uv-lock-constraints.txt \
            --requirements deploy/requirements-production.txt; \
        rm /tmp/uv-lock-constraints.txt; \
    fi

# 2. The project itself, installed as a regular (non-editable) package. --inexact keeps the production
#    drivers of step 1: a plain `uv sync` removes every package the lock file does not name.
COPY src/ src/
RUN --mount=type=cache,target=/root/.cache/uv \
    set -eu; \
    extra=""; \
    if [ "${FLYWHEEL_PRODUCTION_EXTRA}" = "true" ]; then extra="--extra production"; fi; \
    uv sync --frozen --no-dev --no-editable --inexact --compile-bytecode ${extra}; \
    python -c "from importlib.metadata import version as v; \
        print(*(f'{p}=={v(p)}' for p in ('genai-flywheel', 'apache-airflow', 'mlflow', \
        'apache-airflow-providers-celery', 'redis', 'psycopg2-binary')))"

# 3. What Airflow reads at run time: the DAGs, the plugin package, the configuration, the init job.
#    docker-compose.yml mounts deploy/flywheel.compose.yaml over flywheel.yaml (MLflow at http://mlflow:5000).
COPY dags/ dags/
COPY plugins/ plugins/
COPY flywheel.yaml flywheel.yaml
COPY deploy/init-airflow.sh deploy/init-airflow.sh

# Non-root, uid 50000 as in Airflow's own images. The mount points exist and belong to it so that fresh
# named volumes (docker copies ownership from the image into an empty volume) are writable.
RUN groupadd --gid 50000 airflow \
    && useradd --uid 50000 --gid 50000 --home-dir "${AIRFLOW_HOME}" --shell /bin/bash airflow \
    && mkdir -p "${AIRFLOW_HOME}/logs" "${AIRFLOW_HOME}/auth" /data /mlartifacts \
    && chown -R airflow:airflow "${AIRFLOW_HOME}" /data /mlartifacts

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/flywheel/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/flywheel/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    PYTHONPATH=/opt/flywheel/plugins \
    FLYWHEEL_CONFIG=/opt/flywheel/flywheel.yaml \
    FLYWHEEL_DATA_ROOT=/data \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true \
    GX_ANALYTICS_ENABLED=false \
    ARROW_DEFAULT_MEMORY_POOL=jemalloc

USER airflow
EXPOSE 8080 5000
CMD ["airflow", "version"]
