# The README's commands: `make run` and `make test` do all their own set-up.
PYTHON_BIN ?= python3.11
VENV       := .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test lint format bench migrate clean

$(VENV)/bin/python:
	$(PYTHON_BIN) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): $(VENV)/bin/python requirements/base.txt requirements/dev.txt clients/python/pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip wheel
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet -e ./clients/python
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	bash scripts/run.sh

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	bash scripts/bench.sh

clean:
	rm -rf $(VENV) var .pytest_cache
