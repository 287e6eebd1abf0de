# Two commands for a fresh machine:
#   make course   set up (once) and open the course in JupyterLab
#   make test     set up (once) and run every test: unit tests, doctests and all notebooks
# Set-up is idempotent: a second run only checks a stamp file and goes straight on.

PYTHON ?= python3
VENV ?= .venv
# torch first, pinned, so nothing else pulls a different build. For a CPU-only build on Linux:
#   make course TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
PIP = $(VENV)/bin/python -m pip
STAMP = $(VENV)/.xencoder-lab-installed

.PHONY: course test setup

course: setup
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)  # root: e.g. in a container

test: setup
	$(VENV)/bin/python -m ruff check xencoder_lab tests benchmarks
	$(VENV)/bin/python -m pytest

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install --quiet -e .[dev]
	touch $(STAMP)
