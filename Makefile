# Two commands do all the set-up on a fresh machine:
#   make run    the service on its embedded default (no cluster needed)
#   make test   every test: lint, types, layering, rules, unit, integration (real Prometheus x3, MLflow, PostgreSQL), e2e, the page in chromium
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROM_DIR := .cache/prometheus
PROM := $(PROM_DIR)/usr/bin/prometheus
PROMTOOL := $(PROM_DIR)/usr/bin/promtool
PG_BIN := /usr/lib/postgresql/15/bin
POSTGRES := $(PG_BIN)/postgres
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint stack-up stack-down bench bench-collectors bench-models bench-cost bench-checkpoint bench-replay bench-api lock clean

run: $(VENV)/.installed
	$(BIN)/icos-intel run $(ARGS)

test: $(VENV)/.installed $(PROM) $(POSTGRES) $(CHROMIUM) lint
	$(PROMTOOL) check rules deploy/prometheus/*.rules.yml
	$(BIN)/python -m tests.stack up
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; $(BIN)/python -m tests.stack down; exit $$status

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

stack-up: $(VENV)/.installed $(PROM) $(POSTGRES)
	$(BIN)/python -m tests.stack up

stack-down: $(VENV)/.installed
	$(BIN)/python -m tests.stack down

# Benchmarks print a table and write JSON under bench-results/ (not part of `make test`).
bench: bench-collectors bench-models bench-cost bench-checkpoint bench-replay bench-api

bench-collectors: $(VENV)/.installed $(PROM)
	$(BIN)/python -m tests.bench.bench_collectors --json bench-results/collectors.json

# NAB and the Azure VM CPU traces, read from ../shared/eval (never shipped with the project).
bench-models: $(VENV)/.installed
	$(BIN)/python -m tests.bench.bench_models --json bench-results/models.json

# Cost per sample per series with 10,000 and 100,000 series in one bank, one core.
bench-cost: $(VENV)/.installed
	$(BIN)/python -m tests.bench.bench_cost --json bench-results/cost.json

# Checkpoint and restore time and size with 10,000 and 100,000 series; the engine's pause.
bench-checkpoint: $(VENV)/.installed
	$(BIN)/python -m tests.bench.bench_checkpoint --json bench-results/checkpoint.json

# Decision replay: the predictive floor against Knative's reactive KPA (simulated) on the Azure VM traces as load.
bench-replay: $(VENV)/.installed
	$(BIN)/python -m tests.bench.bench_replay --json bench-results/replay.json

# The API: latency at 200 requests/s (one series, 100 series; with and without TCP_NODELAY), /metrics render
# time at 1,000 and 10,000 series, the page's time to first chart in headless Chromium.
bench-api: $(VENV)/.installed $(CHROMIUM)
	$(BIN)/python -m tests.bench.bench_api --json bench-results/api.json

# The Python environment: pinned by requirements.lock, installed with uv (seconds instead of minutes).
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip >/dev/null
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/python -m uv pip install -q --python $(BIN)/python --compile-bytecode -r requirements.lock
	$(BIN)/python -m uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

# Prometheus and promtool from Debian's package, unpacked locally (they need only libc).
$(PROM):
	mkdir -p $(PROM_DIR)
	cd $(PROM_DIR) && (apt-get download prometheus 2>/dev/null || (apt-get update -qq && apt-get download prometheus))
	dpkg-deb -x $(PROM_DIR)/prometheus_*.deb $(PROM_DIR)
	$(PROM) --version | head -1

# PostgreSQL 15 from Debian's package, for the test stack only (`make run` uses SQLite). No server starts at
# install without systemd; tests/stack.py runs its own cluster as the postgres user on a free loopback port.
$(POSTGRES):
	export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q postgresql-15 || (apt-get update -qq && apt-get install -y -q postgresql-15)
	$(POSTGRES) --version

# Debian's chromium for the page's browser tests (Playwright drives it; it cannot download its own builds here).
$(CHROMIUM):
	export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium || (apt-get update -qq && apt-get install -y -q chromium)
	$(CHROMIUM) --version

lock:
	$(BIN)/python -m uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	-$(BIN)/python -m tests.stack down
	rm -rf $(VENV) $(PROM_DIR) tests/.stack .icos-state
