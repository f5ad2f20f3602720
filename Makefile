# opsbot: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
DEMO_DIR ?= $(CURDIR)/.opsbot-demo

.PHONY: demo test bench lint install install-dev prom-tools pg-tools clean help

help:
	@echo "make demo   - install, index the sample runbooks, open 'opsbot chat' (no Slack, GPU or settings)"
	@echo "make test   - install everything and run all tests, integration tests included"
	@echo "make bench  - write benchmark figures to bench/results/*.json"
	@echo "make lint   - ruff check, ruff format --check, mypy"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamps make the targets safe (and fast) to run twice; they are redone when pyproject or a lock
# changes. The versions come from the lock files (hashed; torch is the CPU build, see
# requirements/lock.txt), opsbot itself is installed editable on top without resolving anything.
$(VENV)/.installed: $(BIN)/python pyproject.toml requirements/lock-runtime.txt
	$(PIP) install --quiet --require-hashes -r requirements/lock-runtime.txt
	$(PIP) install --quiet --no-deps -e .
	touch $@

# llama-cpp-python (the local-llm extra) is built from source here. A native build
# (-march=native) on a CPU with AMX segfaults at its first completion in llama.cpp's AMX
# matmul (ggml-org/llama.cpp#20824); the portable build (AVX2) answers on every x86-64
# machine. --no-cache-dir keeps pip from reusing a wheel built with other flags.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
$(VENV)/.installed-dev: $(VENV)/.installed requirements/lock.txt
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --quiet --no-cache-dir --require-hashes \
		-r requirements/lock.txt
	touch $@

# Regenerates requirements/lock.txt and lock-runtime.txt from pyproject.toml, keeping the pins
# that still fit; `make lock LOCK_ARGS=--upgrade` takes the newest of everything instead.
.PHONY: lock
lock:
	PYTHON=$(PYTHON) requirements/lock.sh $(LOCK_ARGS)

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

# A real PostgreSQL for the replica, queue and checkpointer tests (Debian's package), the same way.
pg-tools:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  [ "$$(id -u)" = 0 ] && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql \
	  || echo "WARNING: PostgreSQL missing and not installable here (run 'apt-get install postgresql'" \
	     "as root); tests that need it will skip"; }

test: install-dev prom-tools pg-tools
	$(BIN)/python -m pytest -m "" tests

bench: install-dev prom-tools pg-tools
	$(BIN)/python -m bench.run

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
