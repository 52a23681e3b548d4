# The two commands a fresh machine needs: `make demo` and `make test`. Both set up .venv first
# (scripts/setup.sh; seconds when nothing changed).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint format bench-llm bench-llm-gpu

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

# Answer latency (docs/performance.md). The GPU line needs a CUDA machine.
bench-llm: setup
	$(PY) -m pgpt_ros.bench.cli llm --config tiny --statistic min

bench-llm-gpu: setup
	$(PY) -m pgpt_ros.bench.cli llm --config llava-7b-shape --device cuda --dtype float16
