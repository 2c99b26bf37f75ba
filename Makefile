# Quick start: `make test` and `make demo` create .venv on first use and install what they need.
# A user with a GPU can create .venv and install their own torch first; it is kept.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.videojepa-installed
TORCH  ?= torch==2.13.0

.PHONY: test lint format demo install clean-venv help

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-runs only when pyproject.toml changes; torch is installed only when the venv has none.
$(STAMP): pyproject.toml | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# ruff (configured in pyproject.toml): the linter and the formatter's check; `make format` applies both.
# lint-imports (import-linter, contracts in pyproject.toml): the package's rooms import one way (SPEC section 4).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The method comparison on synthetic videos (results in runs/demo); `make demo ARGS=--quick` for a short one.
# The install includes matplotlib (the `test` extra) for the demo's plots.
demo: $(STAMP)
	$(VENV)/bin/videojepa demo $(ARGS)

clean-venv:
	rm -rf $(VENV)

help:
	@echo "make test               create .venv if needed, run the test suite"
	@echo "make lint               ruff check + ruff format --check + lint-imports (what CI runs before the tests)"
	@echo "make format             apply ruff's fixes and formatting"
	@echo "make demo [ARGS=...]    create .venv if needed, run \`videojepa demo\` (ARGS=--quick: a short one)"
	@echo "make install            only create/update .venv"
	@echo "make clean-venv         delete .venv"
