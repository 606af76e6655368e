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
SERVICES    := $(VENV_PY) tests/support/services.py
SERVICES_ENV := tests/.services.env
PYTEST_ARGS ?=
# 1: pytest's "no tests collected" (exit 5) counts as success (used by .ci/run while the
# suite is young; a run that collects nothing still says so loudly).
ALLOW_NO_TESTS ?=

.PHONY: help venv install run test bench migrate services services-stop clean distclean

help:
	@echo "make venv       create $(VENV) (python3 -m venv)"
	@echo "make install    pip install -e '.[test]' into $(VENV) when pyproject.toml changed"
	@echo "make run        demo: disburse serve --demo on http://127.0.0.1:8000 (SQLite, no Redis)"
	@echo "make test       ensure PostgreSQL + Redis + system Chromium, run pytest (PYTEST_ARGS=...), stop private servers"
	@echo "make bench      the 100,000-household cycle with its floors measured in the same run (bench.cycle)"
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

# Reinstall only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml | $(VENV_PY)
	$(PIP) install -e '.[test]'
	@touch $@

install: $(STAMP)

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

# The private servers are stopped whatever pytest does (failure, Ctrl-C); pytest's exit
# code is kept.
test: install
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

# ---------------------------------------------------------------- cleanup

clean:
	rm -rf var/ .pytest_cache/ .hypothesis/ .mypy_cache/ .ruff_cache/ build/ dist/ \
	  tests/artifacts/ tests/.services.env
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} + \
	  -o -name '*.py[co]' -exec rm -f {} +

distclean: services-stop clean
	rm -rf $(VENV) *.egg-info
