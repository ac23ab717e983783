# Two commands on a fresh Debian 12 machine (as root): `make up`, `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
MONGO_VENV := .venv-mongo
NX_VERSION := 0.8.1

.PHONY: up down test deps system-deps unit bench clean

up: deps
	$(VENV)/bin/zhzx up --pair

down:
	@if [ -x $(VENV)/bin/zhzx ]; then $(VENV)/bin/zhzx down --pair; else echo "nothing to stop"; fi

test: deps
	$(VENV)/bin/python -m pytest

unit: deps
	$(VENV)/bin/python -m pytest tests/unit

bench: deps
	$(VENV)/bin/python bench/import_roster.py
	$(VENV)/bin/python bench/routing_accuracy.py
	$(VENV)/bin/python bench/notify_fanout.py

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
