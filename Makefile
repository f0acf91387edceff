# The few verbs people need. Everything runs from the project's own virtualenv in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test test-postgres test-e2e lint bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

var/secret_key:
	mkdir -p var
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key

# Set up, migrate, load the demo practice (once) and serve it on http://$(HOST):$(PORT)/.
demo: install var/secret_key
	REFLOOP_SECRET_KEY_FILE=var/secret_key REFLOOP_SECURE_COOKIES=0 $(BIN)/refloop demo --host $(HOST) --port $(PORT)

# The whole suite on SQLite (browser tests included).
test: install
	$(BIN)/python -m pytest

# The whole suite on PostgreSQL.
test-postgres: install
	DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check refloop tests bench
	REFLOOP_DEBUG=1 $(BIN)/refloop makemigrations --check --dry-run

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
