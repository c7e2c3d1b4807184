# leadscore: `make help` lists the targets. Everything runs in .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export LEADSCORE_HOME ?= $(CURDIR)/.leadscore

.DEFAULT_GOAL := help
.PHONY: help install demo test lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

# The manager page's browser tests drive Debian's chromium (Playwright never downloads its own here).
# A small CJK font, so the page's Chinese renders in the screenshots instead of empty boxes.
CHROMIUM := /usr/bin/chromium
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
# The lead store's tests run the same cases on SQLite and on a real PostgreSQL server (Debian's package).
POSTGRES := /usr/share/postgresql-common/pg_wrapper
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM) $(CJK_FONT) $(POSTGRES):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei postgresql >/dev/null

install: $(BIN)/.installed ## create .venv and install leadscore with its test tools

demo: install ## simulate a CRM, train, serve on localhost:3000 and answer an example request
	$(BIN)/leadscore demo

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Two workers, each taking whole files (a file's tests keep their order and module fixtures); the load and soak
# tests then run alone, on an otherwise idle machine: README's Development.
# Both share the run's simulated world and trained models (tests/conftest.py: run_dir).
RUN_ALONE := tests/integration/test_reliability.py
TEST_RUN := $(CURDIR)/test-artifacts/run
test: lint $(CHROMIUM) $(CJK_FONT) $(POSTGRES) ## lint, then run every test (unit, data, model, notebooks, real servers and browser)
	rm -rf $(TEST_RUN)
	LEADSCORE_TEST_RUN=$(TEST_RUN) $(BIN)/pytest -n 2 --dist loadfile --ignore=$(RUN_ALONE)
	LEADSCORE_TEST_RUN=$(TEST_RUN) $(BIN)/pytest $(RUN_ALONE)

clean: ## remove the venv, the local MLflow store and caches
	rm -rf $(VENV) .leadscore .pytest_cache .ruff_cache .hypothesis test-artifacts
