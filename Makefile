# icp-sync developer commands. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-postgres lint fmt bench wheel-check clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "icp-sync needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP) ## create .venv from the lock file (done automatically by the other targets)

demo: $(STAMP) ## run the whole product end to end on the built-in CRM sandbox and SQLite
	$(BIN)/icp-sync demo

test: $(STAMP) ## run the whole test suite (PostgreSQL too when ICP_SYNC_TEST_POSTGRES_URL is set)
	$(BIN)/python -m pytest -n auto -q

lint: $(STAMP) ## ruff lint + format check, mypy strict on the package
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy icp_sync connectors

fmt: $(STAMP) ## format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

wheel-check: $(STAMP) ## build the wheel, install it into a fresh venv, run the demo from it
	rm -rf build/wheel-check && mkdir -p build/wheel-check
	$(BIN)/python -m pip wheel --quiet --no-deps -w build/wheel-check .
	$(PYTHON) -m venv build/wheel-check/venv
	build/wheel-check/venv/bin/python -m pip install --quiet -r requirements.lock
	build/wheel-check/venv/bin/python -m pip install --quiet --no-deps build/wheel-check/*.whl
	cd build/wheel-check && venv/bin/icp-sync demo --workdir demo > demo.log
	@tail -n 2 build/wheel-check/demo.log

bench: $(STAMP) ## run the benchmarks and print their figures
	$(BIN)/python -m bench

clean: ## remove the environment and generated files
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
