# Quick start: `make test` and `make demo` create .venv on first use and install what they need.
# A user with a GPU can create .venv and install their own torch first; it is kept.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.videojepa-installed
TORCH  ?= torch==2.13.0

.PHONY: test install clean-venv

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

clean-venv:
	rm -rf $(VENV)
