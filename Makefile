# make demo / make test work on a fresh machine: each creates or reuses .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: venv system-deps demo test lint docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel 2>&1 | grep -v "is ignored" || true
	# torch/torchvision first so pip takes the local builds; then the project with its dev tools.
	$(PIP) install -q "torch>=2.2" "torchvision>=0.17" 2>&1 | grep -v "is ignored" || true
	$(PIP) install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import modalforge, torch, timm, transformers, monai, sklearn" 
	touch $(STAMP)

# System packages, from Debian: chromium (the browser tests render the HTML reports,
# tests/apps/report) and libegl1 (MuJoCo renders gymnasium's Reacher-v5 headless with
# MUJOCO_GL=egl). Idempotent: nothing happens when both are present. Installs with apt-get as
# root or through `sudo -n`; where neither works it only warns (those tests then skip, and fail
# under CI=true).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1 ' || missing="$$missing libegl1"; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=; \
	  elif command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; \
	  else sudo=none; fi; \
	  if [ "$$sudo" = none ] || ! command -v apt-get >/dev/null 2>&1; then \
	    echo "warning:$$missing not installed and cannot be installed here (needs apt-get as root or sudo): the tests that need them will skip" >&2; \
	  else \
	    echo "installing$$missing (apt-get) for the browser and MuJoCo tests" >&2; \
	    { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; } >/dev/null \
	      || echo "warning: installing$$missing failed: the tests that need them will skip" >&2; \
	  fi; }

demo: venv
	$(VENV)/bin/modalforge demo --out runs/demo

test: venv system-deps
	$(VENV)/bin/ruff check core plugins apps tests benchmarks docs
	$(VENV)/bin/ruff format --check core plugins apps tests benchmarks docs
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir build/site
	$(VENV)/bin/pytest -q

lint:
	$(VENV)/bin/ruff check --fix core plugins apps tests benchmarks docs
	$(VENV)/bin/ruff format core plugins apps tests benchmarks docs

clean:
	rm -rf $(VENV) build site runs .pytest_cache
