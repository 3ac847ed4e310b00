# genai-flywheel: `make demo` runs the whole loop on the embedded default; `make test` runs every test tier.
# A fresh machine needs only python3 (with pip and venv): uv and the virtual environment bootstrap here.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION ?= 0.13.9
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Every Airflow task is a fresh process: without compiled bytecode each one recompiles mlflow at import.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo test test-unit test-dags test-integration lint down clean bench

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

# The production extra (Celery provider, Redis client, PostgreSQL drivers) too: the topology tier runs the
# CeleryExecutor of docker-compose.yml. The Makefile is a prerequisite so a changed sync command re-syncs.
$(VENV)/.synced: pyproject.toml uv.lock Makefile | $(UV)
	$(UV) sync --frozen --extra production --compile-bytecode --python $(PYTHON)
	touch $@

setup: $(VENV)/.synced  ## create the virtual environment from uv.lock

demo: setup  ## start MLflow + Airflow locally, simulate traffic, backfill the monitor, run the loop
	$(VENV)/bin/flywheel-demo run

down:  ## stop everything `make demo` started
	@if [ -x $(VENV)/bin/flywheel-demo ]; then $(VENV)/bin/flywheel-demo down; fi

test: setup  ## every test tier: unit, DAG integrity, integration
	$(VENV)/bin/pytest -q

test-unit: setup
	$(VENV)/bin/pytest -q -m unit

test-dags: setup
	$(VENV)/bin/pytest -q -m dags

test-integration: setup
	$(VENV)/bin/pytest -q -m integration

lint: setup
	$(VENV)/bin/ruff check src dags plugins tests benchmarks

bench: setup  ## the monitor benchmark (prints its figures)
	$(VENV)/bin/python benchmarks/monitor.py

clean: down
	rm -rf .demo data $(TOOLS)
