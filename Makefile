# Developer tooling. Works on a fresh clone: `make test` creates the venv, installs the
# project with its test extras, makes sure PostgreSQL and Redis answer (starting private
# throwaway servers when they don't), runs pytest, and stops what it started.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        ?= .venv
VENV_PY     := $(VENV)/bin/python
PIP         := $(VENV_PY) -m pip
STAMP       := $(VENV)/.installed
# Every runtime and test package, pinned with hashes (`make lock` regenerates it).
LOCK        := requirements.lock
LOCK_VENV   ?= .venv-lock
PIP_TOOLS   := pip-tools==7.6.2
# e.g. LOCK_ARGS=--upgrade, or LOCK_ARGS='--upgrade-package sqlalchemy'
LOCK_ARGS   ?=
SERVICES    := $(VENV_PY) tests/support/services.py
SERVICES_ENV := tests/.services.env
# The short chaos run is deselected from the default run until it is steady under a loaded
# machine (issue 10's note); `make chaos-short` runs it alone.
PYTEST_ARGS ?= -m "not chaos"
# 1: pytest's "no tests collected" (exit 5) counts as success (used by .ci/run while the
# suite is young; a run that collects nothing still says so loudly).
ALLOW_NO_TESTS ?=

.PHONY: help venv install lock lint run test bench bench-recon chaos chaos-short migrate services services-stop \
  clean distclean

help:
	@echo "make venv       create $(VENV) (python3 -m venv)"
	@echo "make install    install $(LOCK) (hashes required), then the project, into $(VENV)"
	@echo "make lock       regenerate $(LOCK) from pyproject.toml (LOCK_ARGS=--upgrade to move pins)"
	@echo "make lint       import-linter contracts, ruff check, mypy: all at zero findings"
	@echo "make run        demo: disburse serve --demo on http://127.0.0.1:8000 (SQLite, no Redis)"
	@echo "make test       make lint, then ensure PostgreSQL + Redis + system Chromium, run pytest (PYTEST_ARGS=...), stop private servers"
	@echo "make bench      the 100,000-household cycle with its floors measured in the same run (bench.cycle)"
	@echo "make bench-recon  reconcile a 1,000,000-line statement; figures into BENCHMARKS.md (bench.recon)"
	@echo "make chaos      a cycle of 50,000 households under >= 200 faults, judged against the partners' journals; RELIABILITY.md (CHAOS_ARGS=...)"
	@echo "make migrate    disburse db upgrade"
	@echo "make services / services-stop   start / stop the private test servers by hand"
	@echo "make clean      remove var/ and caches;  make distclean  also removes $(VENV)"

# ---------------------------------------------------------------- environment

$(VENV_PY):
	@if ! $(PYTHON) -m venv $(VENV); then \
	  echo "venv creation failed; trying to install the venv module (Debian python3-venv)"; \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update && apt-get install -y python3-venv \
	      "python$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv" \
	      || apt-get install -y python3-venv; \
	  fi; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(PIP) install --quiet --upgrade pip

venv: $(VENV_PY)

# Reinstall when pyproject.toml or the lock is newer than the stamp. Every package comes from
# the lock, its hash checked; the project itself is installed without dependencies and without
# build isolation, so its build backend (setuptools, pinned in the lock too) is not fetched
# unchecked. `pip check` fails when pyproject.toml asks for a package the lock lacks (run
# `make lock`).
$(STAMP): pyproject.toml $(LOCK) | $(VENV_PY)
	$(PIP) install --require-hashes -r $(LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	$(PIP) check
	@touch $@

install: $(STAMP)

$(LOCK_VENV)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet '$(PIP_TOOLS)'

# The lock covers the runtime dependencies, the test extras and the build backend; it keeps
# the pins that still satisfy pyproject.toml unless LOCK_ARGS says otherwise.
lock: $(LOCK_VENV)/bin/pip-compile
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet \
	  --generate-hashes --allow-unsafe --all-build-deps --extra test --strip-extras \
	  --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) -o $(LOCK) pyproject.toml

# ---------------------------------------------------------------- run

run: install
	$(VENV)/bin/disburse serve --demo

migrate: install
	$(VENV)/bin/disburse db upgrade

# ---------------------------------------------------------------- tests

services: install
	$(SERVICES) ensure

services-stop:
	@if [ -x $(VENV_PY) ]; then $(SERVICES) stop; else $(PYTHON) tests/support/services.py stop; fi

# The architecture, lint and type gate (issue 9): the import-linter contracts in
# pyproject.toml, ruff's rules, mypy on the domain (strict), services, reconciliation and
# connectors. All three run so that one report shows every finding; any finding fails.
lint: install
	@rc=0; \
	$(VENV)/bin/lint-imports || rc=1; \
	$(VENV)/bin/ruff check . || rc=1; \
	$(VENV)/bin/mypy || rc=1; \
	exit $$rc

# `make lint` first, so a broken contract or a lint finding fails fast, before the servers
# start. The private servers are stopped whatever pytest does (failure, Ctrl-C); pytest's
# exit code is kept.
test: lint
	@trap '$(SERVICES) stop' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	$(SERVICES) ensure || exit $$?; \
	$(VENV_PY) tests/support/tools.py promtool >/dev/null \
	  || echo "WARNING: promtool could not be installed: the alert-rule tests will fail"; \
	$(VENV_PY) tests/support/browser.py ensure >/dev/null || exit $$?; \
	set -a; . $(SERVICES_ENV); set +a; \
	rc=0; $(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ "$$rc" = 5 ] && [ -n "$(ALLOW_NO_TESTS)" ]; then \
	  echo "WARNING: pytest collected no tests (exit 5); accepted because ALLOW_NO_TESTS=$(ALLOW_NO_TESTS)"; \
	  rc=0; \
	fi; \
	exit $$rc

bench: install
	@trap '$(SERVICES) stop' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	$(SERVICES) ensure || exit $$?; \
	set -a; . $(SERVICES_ENV); set +a; \
	$(VENV_PY) -m bench.cycle

# Reconciliation of a 1,000,000-line statement, beside the COPY floor (issue 4).
bench-recon: install
	@trap '$(SERVICES) stop' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	$(SERVICES) ensure || exit $$?; \
	set -a; . $(SERVICES_ENV); set +a; \
	$(VENV_PY) -m bench.recon

# The chaos suite (issue 10): its own PostgreSQL and Redis (it restarts and flushes them),
# gunicorn, two RQ workers and journalled partner simulators; faults during dispatch and
# confirmations, the operator's recovery, then 0 lost, 0 paid twice, 0 stuck, ledger ok.
# Exit non-zero on any mismatch. The short run (2,000 households) is part of `make test`.
CHAOS_ARGS ?= --households 50000 --faults 200 --seed 1 --report RELIABILITY.md

chaos: install
	$(VENV_PY) -m tests.chaos $(CHAOS_ARGS)

# The short run (2,000 households, 13 faults) as the pytest test it is.
chaos-short:
	$(MAKE) test PYTEST_ARGS='-m chaos tests/chaos'

# ---------------------------------------------------------------- cleanup

clean:
	rm -rf var/ .pytest_cache/ .hypothesis/ .mypy_cache/ .ruff_cache/ .import_linter_cache/ \
	  build/ dist/ \
	  tests/artifacts/ tests/.services.env
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} + \
	  -o -name '*.py[co]' -exec rm -f {} +

distclean: services-stop clean
	rm -rf $(VENV) $(LOCK_VENV) *.egg-info
