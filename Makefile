# Two commands do all the set-up on a fresh machine:
#   make run    the product with demo data on the embedded default (SQLite, ./var)
#   make test   linters (ruff, mypy, the layer contract) and the whole suite (SQLite and PostgreSQL,
#               and BottleCRM, the real CRM the connector is tested against)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck pytest bench mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/vrm init
	$(BIN)/vrm demo
	$(BIN)/vrm serve

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	scripts/ensure-postgres.sh
	scripts/ensure-chromium.sh
	scripts/ensure-bottlecrm.sh
	$(BIN)/pytest -n 2

test: lint typecheck pytest

# make bench BENCH=token_endpoint (or data_api, feed, commit): bench/README.md
BENCH ?= store
bench: $(VENV)/.installed
	$(BIN)/python -m bench.$(BENCH)

# Mutation testing of the security-critical modules (docs/testing.md); not
# part of make test: CPU heavy. MUTANTS narrows it, e.g. 'vrm.crypto.aead*'.
MUTANTS ?=
mutate: $(VENV)/.dev-installed
	$(BIN)/mutmut run $(MUTANTS)
	$(BIN)/python scripts/mutation_scores.py

clean:
	rm -rf mutants $(VENV) .pytest_cache .mypy_cache .ruff_cache
