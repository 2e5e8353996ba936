# tradetrail — the two commands that matter: `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

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

install: $(STAMP)

install-test: $(TEST_STAMP)

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

clean:
	rm -rf $(VENV) var .pytest_cache
