# xueji: `make run` starts everything with demo data; `make test` runs lint and the tests.
# Both work on a fresh Debian 12 machine with Python 3.11 and root: they create the
# virtualenv and install/start RabbitMQ and PostgreSQL when they are missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install: the venv is rebuilt only when requirements.txt changes.
STAMP := $(VENV)/.requirements.stamp
ARGS ?=
ADMIN_USERNAME ?=
ADMIN_NAME ?=

.DEFAULT_GOAL := help

.PHONY: help venv assets rabbitmq postgres chromium pdf run test fault bench load lint migrate topology deadletters backup restore admin clean distclean

help:
	@echo "make run          start every service and the gateway with demo data (Ctrl-C stops)"
	@echo "make test         ruff, then pytest (without the long fault suite and benchmarks)"
	@echo "make fault        the long fault-injection suite (tests/fault)"
	@echo "make bench        benchmarks (tests/perf)"
	@echo "make load         the gateway under load (mixed workload, search/dashboard latency vs bare Flask)"
	@echo "make lint         ruff check"
	@echo "make migrate      migrate every service database to head"
	@echo "make topology     declare exchanges and queues of every event handler"
	@echo "make deadletters  list dead-lettered events"
	@echo "make backup       back up every service database into var/backups (KEEP=14 sets kept)"
	@echo "make restore SET=var/backups/<set>   restore a set (stop the services first)"
	@echo "make admin        create the first administrator account (interactive)"
	@echo "make assets       install the browser libraries (ECharts, Swagger UI) with npm ci"
	@echo "make clean        remove var/ (local databases) and caches; distclean also .venv"

venv: $(STAMP)

$(STAMP): requirements.txt
	@if ! [ -x $(BIN)/python ] || ! $(BIN)/python -m pip --version >/dev/null 2>&1; then \
		rm -rf $(VENV); \
		if ! $(PYTHON) -m venv $(VENV); then \
			echo "venv: '$(PYTHON) -m venv' failed (ensurepip missing?); installing python3-venv"; \
			rm -rf $(VENV); \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv; \
			$(PYTHON) -m venv $(VENV); \
		fi; \
	fi
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

# ECharts from the npm registry (gateway/package-lock.json), served from a git-ignored path.
ECHARTS := gateway/static/vendor/echarts.min.js
SWAGGER_UI := gateway/static/vendor/swagger-ui/swagger-ui-bundle.js

assets: $(ECHARTS) $(SWAGGER_UI)

$(ECHARTS): gateway/package.json gateway/package-lock.json
	@bash deploy/ensure-node.sh
	cd gateway && npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p $(dir $@)
	cp gateway/node_modules/echarts/dist/echarts.min.js $@

# Swagger UI for the API docs page /api/v1/docs, from the same lock (npm ci ran for ECharts above).
$(SWAGGER_UI): $(ECHARTS)
	mkdir -p $(dir $@)
	cp gateway/node_modules/swagger-ui-dist/swagger-ui-bundle.js gateway/node_modules/swagger-ui-dist/swagger-ui.css $(dir $@)

rabbitmq:
	@bash deploy/ensure-rabbitmq.sh

postgres:
	@bash deploy/ensure-postgres.sh

chromium:
	@bash deploy/ensure-chromium.sh

# Pango and the Noto CJK fonts for the PDF print views (WeasyPrint).
pdf:
	@bash deploy/ensure-pdf.sh

run: venv assets rabbitmq pdf
	$(BIN)/python -m deploy.run

test: venv assets rabbitmq postgres chromium pdf
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not slow_fault and not perf" --durations=25 $(ARGS)

fault: venv rabbitmq postgres
	$(BIN)/pytest -m slow_fault tests/fault $(ARGS)

bench: venv rabbitmq postgres
	$(BIN)/pytest -m perf tests/perf -s $(ARGS)

# Issues 9 and 10: one populated site, the gateway under gunicorn, loadgen.py in its own interpreter.
load: venv assets rabbitmq postgres
	$(BIN)/pytest -m perf tests/perf/test_load.py tests/perf/test_gateway_latency_bench.py -s $(ARGS)

lint: venv
	$(BIN)/ruff check .

migrate: venv
	$(BIN)/python -m services.common.migrate --all

topology: venv rabbitmq
	$(BIN)/python -m services.common.topology

deadletters: venv rabbitmq
	$(BIN)/python -m services.common.deadletters list

KEEP ?= 14
backup: venv
	$(BIN)/python -m deploy.backup create --keep $(KEEP)

restore: venv
	@[ -n "$(SET)" ] || { echo "usage: make restore SET=var/backups/<set>"; exit 2; }
	$(BIN)/python -m deploy.backup restore "$(SET)"

# Asks for what ADMIN_USERNAME / ADMIN_NAME do not give, then the CLI asks for the password.
admin: venv
	@username="$(ADMIN_USERNAME)"; name="$(ADMIN_NAME)"; \
	[ -n "$$username" ] || read -rp "工号 (username): " username; \
	[ -n "$$name" ] || read -rp "姓名 (display name): " name; \
	$(BIN)/python -m services.identity.cli create-admin --username "$$username" --name "$$name"

clean:
	rm -rf var .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) gateway/node_modules gateway/static/vendor
