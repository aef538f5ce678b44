# The two commands: `make run` (the whole service, embedded defaults) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help run test lint types fmt unit workflow e2e migrate lock clean api-key openapi

help:
	@echo "make run    start Temporal dev server + worker + API (Ctrl-C stops all)"
	@echo "make test   ruff, import contracts, mypy and the whole pytest suite"
	@echo "make fmt | lint | types | unit | workflow | e2e | migrate | lock | clean"
	@echo "make openapi  rewrite tests/contract/openapi.json (the API contract snapshot)"
	@echo "make api-key [NAME=local-dev] [SCOPES=admin] [LA=E10000015]   create an API key"

# The link pages' styles (api/pages): GOV.UK Frontend from npm, pinned in package-lock.json,
# compiled with Sass into api/pages/static/ and served by the API (nothing fetched at run time).
PAGES_CSS := api/pages/static/pages.css
$(PAGES_CSS): package.json package-lock.json api/pages/assets/pages.scss
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	npm run --silent build

$(STAMP): pyproject.toml requirements.lock $(PAGES_CSS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev]"
	@touch $(STAMP)

run: $(STAMP)
	$(PY) deploy/run_local.py

test: lint types
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

types: $(STAMP)
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

unit: $(STAMP)
	$(PY) -m pytest tests/unit

workflow: $(STAMP)
	$(PY) -m pytest tests/workflow

e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

# The committed OpenAPI snapshot: review its diff like code (tests/contract fails until updated).
openapi: $(STAMP)
	$(PY) -m api.openapi > tests/contract/openapi.json

migrate: $(STAMP)
	$(PY) -m models.migrate

# An API key for the local stack (shown once). Production: python -m api.keys create --help
NAME   ?= local-dev
SCOPES ?= admin
api-key: $(STAMP)
	$(PY) -m api.keys create --name $(NAME) $(foreach s,$(SCOPES),--scope $(s)) \
		$(foreach c,$(LA),--local-authority $(c))

# Regenerate the pinned versions of every transitive dependency.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^-e ' > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache
