# The few verbs people need. Everything runs from the project's own virtualenv in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test test-postgres test-e2e lint bench bench-earlywarning install clean fhir-validator

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The independent FHIR validator the tests run (medplum, from the npm registry): installed when missing or
# when its lock file changed. Without npm the FHIR validator test is skipped locally and fails under CI=true.
MEDPLUM := tests/interop/medplum
fhir-validator: $(MEDPLUM)/node_modules/.package-lock.json

$(MEDPLUM)/node_modules/.package-lock.json: $(MEDPLUM)/package.json $(MEDPLUM)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then cd $(MEDPLUM) && npm ci --no-audit --no-fund; \
	else echo "npm is not installed: tests/interop/test_fhir_validated_by_medplum.py cannot run"; fi

var/secret_key:
	mkdir -p var
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key

# Set up, migrate, load the demo practice (once) and serve it on http://$(HOST):$(PORT)/.
demo: install var/secret_key
	REFLOOP_SECRET_KEY_FILE=var/secret_key REFLOOP_SECURE_COOKIES=0 $(BIN)/refloop demo --host $(HOST) --port $(PORT)

# The whole suite on SQLite (browser tests included).
test: install fhir-validator
	$(BIN)/python -m pytest

# The whole suite on PostgreSQL.
test-postgres: install fhir-validator
	DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check refloop tests bench
	REFLOOP_DEBUG=1 $(BIN)/refloop makemigrations --check --dry-run

bench: install
	$(BIN)/python -m bench

# Early warning: detection quality on simulated histories (detector vs naive rule vs oracle) and scan time.
bench-earlywarning: install
	$(BIN)/python -m bench bench_earlywarning

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
