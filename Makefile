# Every install step lives here: a clean clone needs only Python 3.10+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest venv clean docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .demo build dist *.egg-info

# Documentation: Sphinx + MyST in strict mode (warnings are errors, nitpicky references).
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $(DOCS_STAMP)

docs: $(STAMP) $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -b html docs docs/_build/html

# `make demo`: the provider on a real local Airflow (api-server, scheduler, dag-processor,
# triggerer) against the Opus emulator; everything under .demo/, stopped at the end.
# KEEP=1 (or OPUS_DEMO_KEEP=1) keeps Airflow running to explore the UI, until Ctrl+C.
# OPUS_SERVICE_KEY + OPUS_WORKFLOW_ID (+ OPUS_API_URL) run it against Opus. See scripts/demo.py.
.PHONY: demo demo-stop dist e2e
KEEP ?= $(OPUS_DEMO_KEEP)

demo: $(STAMP)
	OPUS_DEMO_KEEP='$(KEEP)' $(BIN)/python -m scripts.demo

# Stops processes that a killed demo left behind (it also does so itself on its next start).
demo-stop: $(STAMP)
	$(BIN)/python -c 'from pathlib import Path; from tests.support.processes import stop_recorded; print("stopped:", stop_recorded(Path(".demo/pids")) or "nothing")'

# sdist and wheel into dist/ (tests/dist installs the wheel into a fresh venv and checks it).
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

# Only the tests against real deployments and the built wheel (make test runs them too).
e2e: $(STAMP)
	$(BIN)/python -m pytest -q -m e2e

# Benchmarks against the emulator on loopback (about 8 minutes on 2 cores): saves
# benchmarks/results/*.json and regenerates docs/benchmarks.md from them.
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all
