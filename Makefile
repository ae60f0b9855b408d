# make demo / make test work on a fresh machine: each creates or reuses .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel 2>&1 | grep -v "is ignored" || true
	# torch/torchvision first so pip takes the local builds; then the project with its dev tools.
	$(PIP) install -q "torch>=2.2" "torchvision>=0.17" 2>&1 | grep -v "is ignored" || true
	$(PIP) install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import modalforge, torch, timm, transformers, monai, sklearn" 
	touch $(STAMP)

demo: venv
	$(VENV)/bin/modalforge demo --out runs/demo

test: venv
	$(VENV)/bin/ruff check core plugins apps tests benchmarks docs
	$(VENV)/bin/ruff format --check core plugins apps tests benchmarks docs
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir build/site
	$(VENV)/bin/pytest -q

lint:
	$(VENV)/bin/ruff check --fix core plugins apps tests benchmarks docs
	$(VENV)/bin/ruff format core plugins apps tests benchmarks docs

clean:
	rm -rf $(VENV) build site runs .pytest_cache
