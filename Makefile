# Every target that runs Python first makes sure .venv exists and holds the project.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install train test test-fast lint format tensorboard mlflow clean rename plot

help: ## show this help
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with dev tools

train: $(STAMP) ## train the default model on digits (extra overrides: make train ARGS="model=cnn")
	$(PY) train.py $(ARGS)

test: $(STAMP) ## run the whole test suite
	$(PY) -m pytest $(ARGS)

test-fast: $(STAMP) ## run the tests not marked slow
	$(PY) -m pytest -m "not slow" $(ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP) ## ruff autofix and format
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

tensorboard: $(STAMP) ## serve TensorBoard over logs/
	$(VENV)/bin/tensorboard --logdir logs

mlflow: $(STAMP) ## serve the MLflow UI over logs/mlflow.db (runs trained with logger=mlflow)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///logs/mlflow.db --default-artifact-root logs/mlflow-artifacts

plot: $(STAMP) ## curves of one run as a PNG: make plot RUN=logs/train/runs/<timestamp>
	@test -n "$(RUN)" || { echo "usage: make plot RUN=<run dir>" >&2; exit 2; }
	$(PY) scripts/plot_run.py $(RUN)

rename: ## rename the package everywhere: make rename NAME=myproject
	@test -n "$(NAME)" || { echo "usage: make rename NAME=myproject" >&2; exit 2; }
	$(PYTHON) scripts/rename.py $(NAME)

clean: ## remove logs and caches (keeps .venv)
	rm -rf logs .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
