# Every install step lives here: a clean clone needs only Python 3.10+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# An older Airflow minor the provider supports, for `make test-airflow` and `make demo`:
# AIRFLOW_VERSION=3.1.8 on the command line (an AIRFLOW_VERSION in the environment, as Airflow's
# container images set, is ignored). Its virtualenv is .venv-airflow-3.1.8/, built with the pins
# in constraints/airflow-3.1.8.txt and rebuilt only when those or pyproject.toml change.
ifneq ($(origin AIRFLOW_VERSION),command line)
AIRFLOW_VERSION :=
endif
AIRFLOW_PINS := constraints/airflow-$(AIRFLOW_VERSION).txt
AIRFLOW_VENV := .venv-airflow-$(AIRFLOW_VERSION)
AIRFLOW_BIN := $(AIRFLOW_VENV)/bin
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
ifneq ($(AIRFLOW_VERSION)$(filter test-airflow,$(MAKECMDGOALS)),)
ifeq ($(wildcard $(AIRFLOW_PINS)),)
$(error AIRFLOW_VERSION=<version>: one of $(patsubst constraints/airflow-%.txt,%,$(wildcard constraints/airflow-*.txt)) (no $(AIRFLOW_PINS)))
endif
endif

.PHONY: test lint typecheck pytest venv clean docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,openlineage]'
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
	rm -rf $(VENV) .venv-min .venv-airflow-* .demo build dist *.egg-info

# Documentation: Sphinx + MyST in strict mode (warnings are errors, nitpicky references).
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,openlineage,docs]'
	touch $(DOCS_STAMP)

docs: $(STAMP) $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -b html docs docs/_build/html

# `make demo`: the provider on a real local Airflow (api-server, scheduler, dag-processor,
# triggerer) against the Opus emulator; everything under .demo/, stopped at the end.
# KEEP=1 (or OPUS_DEMO_KEEP=1) keeps Airflow running to explore the UI, until Ctrl+C.
# OPUS_SERVICE_KEY + OPUS_WORKFLOW_ID (+ OPUS_API_URL) run it against Opus. See scripts/demo.py.
.PHONY: demo demo-stop dist e2e
KEEP ?= $(OPUS_DEMO_KEEP)

# AIRFLOW_VERSION=3.1.8 runs it on that older minor (its virtualenv, as `make test-airflow`).
DEMO_STAMP := $(if $(AIRFLOW_VERSION),$(AIRFLOW_STAMP),$(STAMP))
DEMO_BIN := $(if $(AIRFLOW_VERSION),$(AIRFLOW_BIN),$(BIN))

# `exec`: make's child is the demo itself, so a Ctrl+C that the demo handles (KEEP mode ends that way)
# is not reported by make as an interrupted shell.
demo: $(DEMO_STAMP)
	OPUS_DEMO_KEEP='$(KEEP)' exec $(DEMO_BIN)/python -m scripts.demo

# Stops processes that a killed demo left behind (it also does so itself on its next start).
demo-stop: $(STAMP)
	$(BIN)/python -c 'from pathlib import Path; from tests.support.processes import stop_recorded; print("stopped:", stop_recorded(Path(".demo/pids")) or "nothing")'

# docs/reliability.md from the records the reliability suite (make test) and make e2e-distributed left in
# tests/reliability/results/ (git-ignored): the tests never write a tracked file. Each section is rewritten
# only from new records of its own, and kept as it is otherwise (tests/reliability/report.py).
.PHONY: reliability-report
reliability-report: $(STAMP)
	$(BIN)/python -m tests.reliability.report

# sdist and wheel into dist/ (tests/dist installs the wheel into a fresh venv and checks it).
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

# Only the tests against real deployments and the built wheel (make test runs them too).
e2e: $(STAMP)
	$(BIN)/python -m pytest -q -m e2e

# A distributed Airflow on this machine (tests/distributed): PostgreSQL and Redis servers, the
# CeleryExecutor, two schedulers, two triggerers and two Celery workers, killed and taken over.
# About 8 minutes on 2 cores. The servers come from Debian's packages: installed here when missing
# and running as root (as CI does); otherwise it says what to install. `make test` leaves it out.
.PHONY: e2e-distributed distributed-system-packages
DISTRIBUTED_STAMP := $(VENV)/.distributed-installed

$(DISTRIBUTED_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[distributed]'
	touch $(DISTRIBUTED_STAMP)

distributed-system-packages:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "make e2e-distributed needs the Debian packages:$$missing" >&2; \
			echo "install them as root: apt-get install -y$$missing" >&2; \
			exit 1; \
		fi; \
	fi

e2e-distributed: $(DISTRIBUTED_STAMP) distributed-system-packages
	$(BIN)/python -m pytest -q -m distributed --durations=0

# `make test-min-deps`: the provider with the OLDEST declared version of each runtime dependency
# (requests, tenacity, aiohttp: the floors in pyproject.toml, pinned by
# scripts/min_constraints.py) and the current Airflow, in a venv of its own (.venv-min/): the unit,
# emulator, hook and network (proxy, TLS) tests. Needs Python 3.11+. About 1 minute (2 when
# .venv-min/ is built anew).
.PHONY: test-min-deps
MIN_VENV := .venv-min
MIN_BIN := $(MIN_VENV)/bin
MIN_STAMP := $(MIN_VENV)/.installed

$(MIN_STAMP): pyproject.toml scripts/min_constraints.py
	test -x $(MIN_BIN)/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_BIN)/python -m pip install --quiet --upgrade pip
	$(MIN_BIN)/python -m scripts.min_constraints pyproject.toml > $(MIN_VENV)/constraints.txt
	$(MIN_BIN)/python -m pip install --quiet -c $(MIN_VENV)/constraints.txt -e '.[test]'
	touch $(MIN_STAMP)

test-min-deps: $(MIN_STAMP)
	$(MIN_BIN)/python -m scripts.min_constraints --check pyproject.toml
	$(MIN_BIN)/python -m pytest -q -p no:cacheprovider tests/unit tests/emulator \
		tests/integration/test_hooks_opus.py tests/integration/test_hooks_opus_async.py \
		tests/integration/test_hooks_transfers.py tests/integration/test_async_sessions.py \
		tests/integration/test_network.py

# `make test-airflow AIRFLOW_VERSION=3.1.8`: the provider on an older Airflow minor it supports, in a
# virtualenv of its own (.venv-airflow-3.1.8/, see the top) with the dependency pins that minor works
# with (constraints/airflow-3.1.8.txt; how they were found is written at its top). Runs the unit,
# emulator and integration tests (the example DAGs with dag.test() among them), one real deployment
# (which also checks the connection form the UI serves), and the built wheel next to that Airflow
# (scripts/check_wheel.py). The newest minor is .venv's: `make test` runs everything there. `.ci/run`
# runs this for every constraints/airflow-*.txt. About 3.5 minutes (+1 when the venv is built anew).
.PHONY: test-airflow
$(AIRFLOW_STAMP): pyproject.toml $(AIRFLOW_PINS)
	test -x $(AIRFLOW_BIN)/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_BIN)/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_BIN)/python -m pip install --quiet -c $(AIRFLOW_PINS) 'apache-airflow==$(AIRFLOW_VERSION)' -e '.[test]'
	touch $(AIRFLOW_STAMP)

test-airflow: $(AIRFLOW_STAMP)
	$(AIRFLOW_BIN)/python -m pytest -q -p no:cacheprovider tests/unit tests/emulator tests/integration \
		tests/e2e/test_deployment.py
	rm -rf $(AIRFLOW_VENV)/wheel
	$(AIRFLOW_BIN)/python -m build --wheel --outdir $(AIRFLOW_VENV)/wheel . >/dev/null
	$(AIRFLOW_BIN)/python -m scripts.check_wheel $(AIRFLOW_VENV)/wheel/airflow_provider_opus-*.whl \
		$(AIRFLOW_PINS) $(AIRFLOW_VENV)/wheel

# Benchmarks against the emulator on loopback (how long the last full run took: the top of
# docs/benchmarks.md, written by the run itself): saves
# benchmarks/results/*.json and regenerates docs/benchmarks.md and its charts (docs/images/) from them;
# `.venv/bin/python -m benchmarks.render` redraws both from the saved JSON alone.
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all
