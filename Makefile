# MLOps platform — `make run` starts every service on embedded storage; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv
PYTEST_ARGS ?=
VALIDATE_ARGS ?=
export UV_LINK_MODE ?= copy

.DEFAULT_GOAL := help

.PHONY: help
help: ## list every target (coloured only on a terminal)
	@if [ -t 1 ] && [ -z "$${NO_COLOR:-}" ]; then on=$$'\033[36m' off=$$'\033[0m'; else on= off=; fi; \
	grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*?## "}; {printf "  %s%-12s%s %s\n", on, $$1, off, $$2}'

.PHONY: install
install: ## install uv (if missing) and every workspace package into .venv
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --all-packages --quiet

.PHONY: run
run: install ## start every service on embedded storage under ./.mlops (Ctrl-C stops all)
	@$(UV) run --frozen --no-sync python scripts/dev/run_all.py

.PHONY: monitor
monitor: install ## Prometheus and AlertManager (Debian packages) watching `make run`; data in ./.mlops/monitoring
	@$(UV) run --frozen --no-sync python scripts/dev/monitor.py

.PHONY: test
test: install ## run the whole test suite against real PostgreSQL, Redis and S3
	@$(UV) run --frozen --no-sync pytest -n 2 -q --durations=25 $(PYTEST_ARGS)

.PHONY: fuzz
fuzz: install ## schemathesis against every service's OpenAPI on a running process; figures in scripts/fuzz/results/
	@$(UV) run --frozen --no-sync python scripts/fuzz/run_fuzz.py

.PHONY: lint
lint: install ## ruff (lint + format check) and mypy
	@$(UV) run --frozen --no-sync ruff check libs services scripts
	@$(UV) run --frozen --no-sync ruff format --check libs services scripts
	@$(UV) run --frozen --no-sync mypy libs/mlops_kit/src libs/mlops_client/src services/model_registry/src services/experiment_tracking/src services/feature_store/src services/pipeline_orchestrator/src services/ab_testing/src services/model_serving/src

.PHONY: format
format: install ## apply ruff fixes and formatting
	@$(UV) run --frozen --no-sync ruff check --fix libs services scripts
	@$(UV) run --frozen --no-sync ruff format libs services scripts

.PHONY: bench
bench: install ## run the benchmarks; figures land in scripts/bench/results/
	@$(UV) run --frozen --no-sync python scripts/bench/registry_bench.py
	@$(UV) run --frozen --no-sync python scripts/bench/orchestrator_bench.py --quick
	@$(UV) run --frozen --no-sync python scripts/bench/ab_bench.py --quick
	@$(UV) run --frozen --no-sync python scripts/bench/monitoring_bench.py --quick
	@$(UV) run --frozen --no-sync python scripts/bench/monitoring_log_bench.py --quick --backend sqlite
	@$(UV) run --frozen --no-sync python scripts/bench/serving_bench.py --quick

.PHONY: validate
validate: install ## validate the platform `make run` started (or MLOPS_*_URL names): a pass/fail table per check
	@$(UV) run --frozen --no-sync python scripts/test_mlops_platform.py $(VALIDATE_ARGS)

.PHONY: check-monitoring
check-monitoring: ## validate Prometheus config, rules and rule tests with promtool
	@bash scripts/check_monitoring.sh

.PHONY: clean
clean: ## remove local data (.mlops) and caches
	rm -rf .mlops .pytest_cache .ruff_cache .mypy_cache
