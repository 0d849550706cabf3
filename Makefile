# aigc-jobs: `make demo` and `make test` set up everything they need on a fresh machine.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# torch first and pinned: an unpinned torch on a CPU host can pull a multi-GB CUDA build.
# 2.13.0's CPU wheel is what this pin resolves to here; on other hosts set TORCH_SPEC and,
# for a CPU-only wheel index, TORCH_INDEX_URL.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_URL ?=
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check
STAMP := $(VENV)/.installed-stamp

.PHONY: install test-servers demo up test test-embedded test-slow bench bench-quick lint format clean

$(STAMP): pyproject.toml Makefile
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(PIP_INSTALL) -e ".[ml,embedded,dev]"
	@touch $(STAMP)

install: $(STAMP)  ## virtualenv with every dependency

# Servers the tests run that PyPI lacks, from Debian where missing (as root): Prometheus
# scrapes the running stack in tests/deploy/test_prometheus.py; Chromium runs the page at /ui
# in tests/ui (Playwright drives it, no browser download).
DEBIAN_TEST_PACKAGES := prometheus chromium
test-servers:
	@missing=""; for pkg in $(DEBIAN_TEST_PACKAGES); do \
		command -v $$pkg >/dev/null || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "as root, install:$$missing (tests needing them are skipped)"; fi; \
	fi

demo: install  ## run a text, an image and an audio job end to end
	HF_HUB_OFFLINE=1 $(BIN)/aigc demo

up: install  ## start the whole stack; Ctrl-C stops it
	$(BIN)/aigc up

test: install test-servers  ## the test suite, on real PostgreSQL, Redis, Celery workers and tiny models
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" -ra

# The suite again on the embedded servers, less what does not depend on which servers run:
# unit, model, deployment, metrics and artifact-store tests, the API fuzz and schema checks,
# the worker's own behaviours (cancel, time limits, Flower events), the webhook signing and
# SSRF checks, the SDK's tests (HTTP only) and the browser tests (the page, not the servers),
# which `make test` covers once.
EMBEDDED_SKIP := tests/faults tests/unit tests/models tests/deploy tests/metrics tests/storage \
	tests/api/test_fuzz.py tests/api/test_openapi.py tests/workers/test_cancel.py \
	tests/workers/test_time_limit.py tests/workers/test_busy_worker_events.py \
	tests/webhooks/test_ssrf.py tests/webhooks/test_signing.py tests/client \
	tests/ui/test_browser.py tests/ui/test_browser_job.py
test-embedded: install test-servers  ## the server-facing tests on the embedded servers even where local ones run
	AIGC_TEST_EMBEDDED=1 HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" -ra \
		$(addprefix --ignore=,$(EMBEDDED_SKIP))

bench: install  ## the benchmarks (a few minutes); JSON on stdout and in bench-results/latest.json
	HF_HUB_OFFLINE=1 $(BIN)/python -m benchmarks

bench-quick: install  ## the benchmarks at smaller sizes, in about a minute
	HF_HUB_OFFLINE=1 $(BIN)/python -m benchmarks --quick

test-slow: install test-servers  ## the long fault-test variants (2,000-job batches)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m slow -ra

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy aigc api db models workers

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
