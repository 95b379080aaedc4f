# login-etl — every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed-stamp
EVENT    ?= events/sqs-mixed-batch.json
# pytest-xdist workers for `make test`: the suite mostly waits on servers, so more workers
# than the 2 cores pay off; tests that need one server share one worker (tests/conftest.py).
WORKERS  ?= 4
# `make test` keeps bytecode (__pycache__, git-ignored; sam build leaves it out of the artifact)
# even where the machine sets PYTHONDONTWRITEBYTECODE: the suite starts many Python processes
# that import the project (CLI runs, nested pytest sessions, the deployed functions), and each
# compiled it again.

.PHONY: help setup test test-fast test-unit lint db-init run-event pg-up pg-down bench clean \
        up down deploy-local demo invoke lambda-image redrive soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

setup: $(STAMP) ## create .venv (Python 3.13) with every pinned dev dependency

$(STAMP): requirements-dev.txt handler/requirements.txt pyproject.toml
	@PY313="$$(localdev/env/find-python313)" || exit 1; \
	  echo "make setup: using $$PY313"; \
	  test -x $(PY) || "$$PY313" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$$(grep '^uv==' requirements-dev.txt)"
	$(VENV)/bin/uv pip install --quiet --python $(PY) --compile-bytecode -r requirements-dev.txt
	$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps --no-build-isolation -e .
	@touch $@

test: setup ## run every check and test (what CI runs; parallel workers, the 15 slowest tests listed)
	$(PY) -m ruff check .
	$(PY) -m mypy
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -n $(WORKERS) --dist loadgroup --durations=15

test-fast: setup ## lint, types, unit and static tests (about a minute): before every commit
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -n 2 tests/unit tests/static

test-unit: setup ## only the fast unit tests
	$(PY) -m pytest tests/unit

lint: setup ## ruff (lint + import order) and mypy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

pg-up: setup ## start the local Postgres (.local/postgres) and print its DATABASE_URL
	@$(PY) -m localdev.env.postgres start

pg-down: setup ## stop the local Postgres
	@$(PY) -m localdev.env.postgres stop

db-init: setup ## create user_logins (current DDL, if absent), the ledger and the analyst view
	@$(PY) -m localdev.lambda_local.run_event --db-init-only

run-event: setup ## run lambda_handler on EVENT (default events/sqs-mixed-batch.json) against local Postgres
	@$(PY) -m localdev.lambda_local.run_event $(EVENT)

bench: setup ## benchmark: naive vs COPY vs lambda_handler at several batch sizes (prints ratios)
	$(PY) -m localdev.bench

up: setup ## start LocalStack (127.0.0.1:4566) + Postgres in the background; writes .local/endpoints.env
	@$(PY) -m localdev.env.stack up

down: ## stop what `make up` started (and nothing else)
	@if test -x $(PY); then $(PY) -m localdev.env.stack down; fi

deploy-local: up ## sam build + samlocal deploy --config-env local; PARAMS="K=V ..." adds/overrides parameters
	@$(PY) -m localdev.env.deploy

demo: setup ## the whole flow on LocalStack: up, db-init, deploy-local, send traffic, wait, summary
	@$(MAKE) --no-print-directory up db-init deploy-local
	@$(PY) -m localdev.demo

soak: setup ## N messages (default 20,000; SOAK_ARGS="--messages N --seed S") through the deployed stack, faults on
	@$(PY) -m localdev.soak $(SOAK_ARGS)

invoke: setup ## sam local invoke on EVENT in a container (Docker, else the project's podman; root sets it up)
	@$(PY) -m localdev.lambda_local.invoke $(EVENT)

lambda-image: setup ## build (or check) the local Lambda python3.13 base image for the project's podman
	@$(PY) -m localdev.lambda_image.build

redrive: setup ## move the DLQ's messages back to the queue (local stack; or DLQ=url [TO=url])
	@$(PY) -m localdev.env.redrive $(if $(DLQ),--dlq-url $(DLQ)) $(if $(TO),--to-queue-url $(TO))

clean: ## remove build and test leftovers (keeps .venv and .local)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
