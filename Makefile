# opsbot: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# CPU build of torch, pinned: an unpinned torch pulls several GB of CUDA packages.
TORCH  := torch==2.13.0
DEMO_DIR ?= $(CURDIR)/.opsbot-demo

.PHONY: demo test bench lint install install-dev prom-tools clean help

help:
	@echo "make demo   - install, index the sample runbooks, open 'opsbot chat' (no Slack, GPU or settings)"
	@echo "make test   - install everything and run all tests, integration tests included"
	@echo "make bench  - write benchmark figures to bench/results/*.json"
	@echo "make lint   - ruff check, ruff format --check, mypy"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamps make the targets safe (and fast) to run twice; they are redone when pyproject changes.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet -e '.[dev,local-llm]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	OPSBOT_DATA_DIR=$${OPSBOT_DATA_DIR:-$(DEMO_DIR)} $(BIN)/opsbot index knowledge/runbooks
	OPSBOT_DATA_DIR=$${OPSBOT_DATA_DIR:-$(DEMO_DIR)} $(BIN)/opsbot chat

# Real Prometheus and Alertmanager for the metrics tests and benchmarks (Debian's packages):
# installed when missing and we are root; otherwise the tests that need them skip, loudly.
prom-tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null \
	  && command -v prometheus-alertmanager >/dev/null || { \
	  [ "$$(id -u)" = 0 ] && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	     prometheus prometheus-alertmanager \
	  || echo "WARNING: prometheus/promtool/prometheus-alertmanager missing and not installable here" \
	     "(run 'apt-get install prometheus prometheus-alertmanager' as root); tests that need them will skip"; }

test: install-dev prom-tools
	$(BIN)/python -m pytest -m "" tests

bench: install-dev prom-tools
	$(BIN)/python -m bench.run

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
