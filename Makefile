# make setup: create .venv and install (idempotent; quick when nothing changed)
# make up:    the embedded platform on this machine (no Docker, no cloud)
# make test:  every test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup up down test plan clean docs
setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing the platform and its tools into $(VENV) (first run: a few minutes)..."
	@$(BIN)/python -m pip install --progress-bar on -e '.[all]'
	@touch $(STAMP)

up: setup
	@$(BIN)/dp local up

down:
	@if [ -x $(BIN)/dp ]; then $(BIN)/dp local down; else echo "Nothing to stop: $(BIN)/dp is not installed."; fi

plan: setup
	@$(BIN)/dp plan $(or $(STACK),dev)

test: setup flink-venv
	@$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .dp .pytest_cache

docs: setup
	@$(BIN)/python -c "from stacks.reference import rewrite_readme; print('README.md updated' if rewrite_readme() else 'README.md up to date')"

# make flink-venv: PyFlink in its own virtualenv (.venv-flink), used to plan the medallion Flink SQL in tests.
# Separate from .venv because PyFlink pins pyarrow<17 and pyiceberg needs >=18. The pin is the `flink` extra.
FLINK_VENV := .venv-flink
FLINK_STAMP := $(FLINK_VENV)/.installed
.PHONY: flink-venv
flink-venv: $(FLINK_STAMP)

$(FLINK_STAMP): pyproject.toml
	@test -x $(FLINK_VENV)/bin/python || $(PYTHON) -m venv $(FLINK_VENV)
	@$(FLINK_VENV)/bin/python -m pip install --quiet --upgrade pip
	@echo "Installing PyFlink into $(FLINK_VENV) (first run: a few minutes, ~1 GB)..."
	@$(FLINK_VENV)/bin/python -m pip install --progress-bar on \
		$$($(FLINK_VENV)/bin/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["flink"])')
	@touch $(FLINK_STAMP)
