# Two commands for a fresh machine:
#   make course   set up (once) and open the course in JupyterLab
#   make test     set up (once) and run every test: unit tests, doctests and all notebooks (in fast mode)
# and one for maintainers:
#   make reproduce   run every notebook in full mode and save it with its outputs, as committed
# Set-up is idempotent: a second run only checks a stamp file and goes straight on.

PYTHON ?= python3
VENV ?= .venv
# torch first, pinned, so nothing else pulls a different build. For a CPU-only build on Linux:
#   make course TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
PIP = $(VENV)/bin/python -m pip
STAMP = $(VENV)/.xencoder-lab-installed
SUDO = $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: course test reproduce setup

course: setup
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)  # root: e.g. in a container

# make test runs one test file or notebook per worker (pytest-xdist), up to 4 workers sharing the cores: on 2
# cores two notebooks at a time on a thread each, so one's Python and kernel start-up fill the other's waits.
# TEST_JOBS=0: everything in one process, on every core.
TEST_JOBS ?= $(shell $(PYTHON) -c 'import os; print(min(4, os.cpu_count() or 1))')
TEST_THREADS ?= $(shell $(PYTHON) -c 'import os; print(max(1, (os.cpu_count() or 1) // max(1, $(TEST_JOBS))))')

test: setup  # notebooks on fixed subsets (XLAB_FAST=1) unless XLAB_FAST=0 is set
	$(VENV)/bin/python -m ruff check xencoder_lab tests benchmarks
	XLAB_FAST=$${XLAB_FAST-1} OMP_NUM_THREADS=$${OMP_NUM_THREADS-$(TEST_THREADS)} $(VENV)/bin/python -m pytest -n $(TEST_JOBS) --dist loadfile

reproduce: setup
	for nb in notebooks/[0-9][0-9]_*.ipynb; do \
	  echo "$$nb"; \
	  XLAB_FAST=0 $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=-1 "$$nb" || exit 1; \
	  $(VENV)/bin/jupyter nbconvert --to notebook --inplace --CoalesceStreamsPreprocessor.enabled=True "$$nb"; \
	done  # the second pass keeps a progress bar's last frame only

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install --quiet -e ".[course,fast,scale,dev]"  # every extra: the notebooks use course, fast and scale
	@# the browser test's Chromium (tests/test_browser.py), from the system's packages where apt-get is there
	command -v chromium >/dev/null || ! command -v apt-get >/dev/null || \
	  { $(SUDO) apt-get install -y -q chromium || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }; } || \
	  echo "no Chromium: the browser test will be skipped (install Debian's chromium package to run it)"
	touch $(STAMP)
