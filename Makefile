# Two commands do all the set-up on a fresh machine:
#   make run    the service on its embedded default (no cluster needed)
#   make test   every test: lint, types, layering, unit, integration (real Prometheus x3, MLflow, PostgreSQL), e2e,
#               the page in chromium, the alert rules (promtool), and the deployment: the image built and run,
#               the Kustomize manifests rendered and validated
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

# The container image (Containerfile; docs/deployment.md). BASE_IMAGE is any CPython 3.11 image with the venv
# module: by default a base built here from Debian's packages (no registry needed), e.g.
# `make image BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm` where a registry can be reached.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= localhost/icos-intelligence:$(VERSION)
LOCAL_BASE := localhost/debian-py:bookworm
BASE_IMAGE ?= $(LOCAL_BASE)
IMAGE_CACHE := .cache/image
WHEELS := $(IMAGE_CACHE)/wheels
# Wheels for the image's interpreter and platform, whatever the host's: CPython 3.11, glibc x86_64 (manylinux
# up to glibc 2.36, Debian 12's). pip matches manylinux_2_X tags only as listed, hence the list.
WHEEL_PLATFORMS := --platform any $(foreach v,$(shell seq 5 36),--platform manylinux_2_$(v)_x86_64) \
	--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64
# pyproject.toml's build-system requirement, pinned for the image
BUILD_REQUIRES := setuptools==84.2.1

.PHONY: run test lint image image-base image-tools stack-up stack-down bench bench-collectors bench-models bench-cost bench-checkpoint bench-replay bench-serverless bench-stream bench-api bench-continuum bench-shards lock clean

run: $(VENV)/.installed
	$(BIN)/icos-intel run $(ARGS)

test: $(VENV)/.installed $(PROM) $(POSTGRES) $(CHROMIUM) lint image
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
bench: bench-collectors bench-models bench-cost bench-checkpoint bench-replay bench-serverless bench-stream bench-continuum bench-shards bench-api

bench-collectors: $(VENV)/.installed $(PROM)
	$(BIN)/python -m tests.bench.bench_collectors --json bench-results/collectors.json

# NAB and the Azure VM CPU traces, read from ../shared/eval (never shipped with the project).
bench-models: $(VENV)/.installed
	$(BIN)/python -m tests.bench.bench_models --json bench-results/models.json

# Cost per sample per series with 10,000 and 100,000 series in one bank, one core.
bench-cost: $(VENV)/.installed
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m tests.bench.bench_cost --json bench-results/cost.json

# Checkpoint and restore time and size with 10,000 and 100,000 series; the engine's pause.
bench-checkpoint: $(VENV)/.installed
	$(BIN)/python -m tests.bench.bench_checkpoint --json bench-results/checkpoint.json

# Shards of one fleet on this machine (1, 2, 4) against three local Prometheus servers, PostgreSQL of the test stack:
# samples per second, step time and its parts, and the projection per replica for 1 million series.
bench-shards: $(VENV)/.installed $(PROM) $(POSTGRES)
	$(BIN)/python -m tests.stack up
	$(BIN)/python -m tests.bench.bench_shards --json bench-results/shards.json $(ARGS)

# Decision replay: the predictive floor against Knative's reactive KPA (simulated) on the Azure VM traces as load.
bench-replay: $(VENV)/.installed
	$(BIN)/python -m tests.bench.bench_replay --json bench-results/replay.json

# The same on serverless load: the Azure Functions day (busiest 50 and burstiest 20 functions), halves A and B by hash.
bench-serverless: $(VENV)/.installed
	$(BIN)/python -m tests.bench.bench_serverless --json bench-results/serverless.json

# The recommendation stream of the embedded default over 24 simulated hours: recommendations per workload per
# day and reversals, in recommend and enact mode.
bench-stream: $(VENV)/.installed
	$(BIN)/python -m tests.bench.bench_stream --json bench-results/stream.json

# The API: latency at 200 requests/s (one series, 100 series; with and without TCP_NODELAY), /metrics render
# time at 1,000 and 10,000 series, the page's time to first chart in headless Chromium.
bench-api: $(VENV)/.installed $(CHROMIUM)
	$(BIN)/python -m tests.bench.bench_api --json bench-results/api.json

# Continuum replay: moves of static, threshold, predictive and oracle arms over edge, fog and cloud clusters, on the
# Azure VM traces and the Azure Functions day as CPU demand; move_cost tuned on one half, reported on both.
bench-continuum: $(VENV)/.installed
	$(BIN)/python -m tests.bench.bench_continuum --json bench-results/continuum.json

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

# The image, built with buildah (no Docker daemon needed). Layers are cached: after the first build, a change of
# the sources rebuilds one small layer (about 10 s), a change of requirements.lock the dependencies' layer.
image: image-tools $(WHEELS)/.downloaded $(IMAGE_CACHE)/runtime.txt image-base
	buildah bud --isolation chroot --layers --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg VERSION=$(VERSION) \
		-t $(IMAGE) -f Containerfile .

# The local base: Debian 12's python3 (3.11) and nothing else, from Debian's packages with mmdebstrap, imported
# once into the local image store (the root filesystem is kept in .cache/image for the next import).
image-base: image-tools
ifeq ($(BASE_IMAGE),$(LOCAL_BASE))
	buildah inspect --type image $(LOCAL_BASE) >/dev/null 2>&1 || $(MAKE) --no-print-directory $(IMAGE_CACHE)/debian-py-bookworm.tar
	buildah inspect --type image $(LOCAL_BASE) >/dev/null 2>&1 || podman import $(IMAGE_CACHE)/debian-py-bookworm.tar $(LOCAL_BASE)
endif

$(IMAGE_CACHE)/debian-py-bookworm.tar:
	mkdir -p $(IMAGE_CACHE)
	mmdebstrap --quiet --format=tar --variant=minbase --include=python3,python3-venv,ca-certificates bookworm $@.part
	mv $@.part $@

# The runtime requirements of pyproject.toml ([project] dependencies), apart: the image's dependency layer is keyed
# on them and the lock, not on the rest of pyproject.toml.
$(IMAGE_CACHE)/runtime.txt: pyproject.toml | $(VENV)/.installed
	mkdir -p $(IMAGE_CACHE)
	$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > $@

# The wheels of requirements.lock for the image (downloaded once; a new lock fetches only what changed).
# The image installs the runtime ones from here with --no-index.
$(WHEELS)/.downloaded: requirements.lock | $(VENV)/.installed
	mkdir -p $(WHEELS)
	@echo "pip download: the wheels of requirements.lock for CPython 3.11, manylinux x86_64 -> $(WHEELS)"
	@set -o pipefail; $(BIN)/python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d $(WHEELS) \
		--python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none $(WHEEL_PLATFORMS) \
		-r requirements.lock "$(BUILD_REQUIRES)" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	test -n "$$(ls $(WHEELS)/numpy-*.whl)"
	touch $@

# buildah builds the image, podman imports the local base, mmdebstrap makes it: Debian's packages, installed
# when one is missing.
image-tools:
	@command -v buildah >/dev/null && command -v podman >/dev/null && command -v mmdebstrap >/dev/null || { \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q buildah podman mmdebstrap || (apt-get update -qq && apt-get install -y -q buildah podman mmdebstrap); }
# Debian's chromium for the page's browser tests (Playwright drives it; it cannot download its own builds here).
$(CHROMIUM):
	export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium || (apt-get update -qq && apt-get install -y -q chromium)
	$(CHROMIUM) --version

lock:
	$(BIN)/python -m uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	-$(BIN)/python -m tests.stack down
	rm -rf $(VENV) $(PROM_DIR) $(IMAGE_CACHE) tests/.stack .icos-state
