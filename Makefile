# tradetrail — the two commands that matter: `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# The web UI's third-party JS and CSS: npm packages pinned by package-lock.json (nothing third-party is
# committed), copied into the package's static folder (git-ignored) by tradetrail/web/assets.py.
ASSETS := tradetrail/web/static/vendor/.built

.PHONY: install install-test run test test-sqlite test-postgres bench lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(TEST_STAMP)

$(ASSETS): package.json package-lock.json tradetrail/web/assets.py | $(STAMP)
	SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	$(BIN)/python -m tradetrail.web.assets build
	touch $(ASSETS)

install: $(STAMP) $(ASSETS)

install-test: install $(TEST_STAMP)

run: install
	$(BIN)/tradetrail init
	$(BIN)/tradetrail serve

# The suite runs on a SQLite file and again on the local PostgreSQL; tests marked `once` (not about the
# database backend: browser walks, the deep API contract run, ...) run on PostgreSQL only.
test: test-sqlite test-postgres

test-sqlite: install-test
	TRADETRAIL_TEST_DB=sqlite $(BIN)/pytest -q -m "not once"

test-postgres: install-test
	TRADETRAIL_TEST_DB=postgresql $(BIN)/pytest -q

bench: install-test
	$(BIN)/python -m benchmarks.run_all

lint: install-test
	$(BIN)/ruff check tradetrail tests benchmarks scripts
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache node_modules tradetrail/web/static/vendor
