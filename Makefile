# The two commands a fresh machine needs: `make demo` and `make test`. Both set up .venv first
# (scripts/setup.sh; seconds when nothing changed).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint format

setup:
	@scripts/setup.sh

demo: setup
	$(PY) -m pgpt_ros.ros.demo

# pytest exits 5 when it collects no tests; make turns any non-zero status into a failure.
test: setup lint
	$(PY) -m pytest -q

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
