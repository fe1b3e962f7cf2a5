# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench clean

install: $(STAMP) .venv-mlflow/.installed

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# MLflow in an environment of its own (its pins clash with ours): the MLflow export and
# import tests run it, and dmv finds it for 'dmv import mlflow'.
MLFLOW_SPEC ?= mlflow>=3,<4
.venv-mlflow/.installed: Makefile
	@test -x .venv-mlflow/bin/python || $(PYTHON) -m venv .venv-mlflow
	.venv-mlflow/bin/python -m pip install --quiet --upgrade pip
	.venv-mlflow/bin/python -m pip install --quiet '$(MLFLOW_SPEC)' scikit-learn lightgbm xgboost-cpu skops
	@touch .venv-mlflow/.installed

demo: $(STAMP)
	$(BIN)/python -m dmv.demo

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	PYTHONPATH=src $(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy src

unit: install
	$(BIN)/pytest -q -n 2 --dist loadfile

test: lint typecheck unit

bench: install
	$(BIN)/python bench/registry.py
	$(BIN)/python bench/data.py
	$(BIN)/python bench/serve.py

clean:
	rm -rf $(VENV) .venv-mlflow .pytest_cache .mypy_cache .ruff_cache
