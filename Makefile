# The two commands a fresh machine needs: `make demo` and `make test`. Both set up .venv first
# (scripts/setup.sh; seconds when nothing changed).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint format train-default ablation export bench-heads bench-llm bench-llm-gpu bench-voice gpu-check

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
	$(PY) -m pgpt_ros.bench.cli llm --out docs/bench --preset tiny --statistic min

bench-llm-gpu: setup
	$(PY) -m pgpt_ros.bench.cli llm --out docs/bench --preset llava-1.5-7b --device cuda --dtype float16

# The GPU path on one CUDA GPU in at most 8 minutes (docs/performance.md), with the machine's own
# python3: no .venv, no ROS, no network. Writes docs/bench/gpu-check-<gpu>.json; BUDGET=seconds
# shortens it (sections that would not fit are skipped and say so).
gpu-check:
	python3 -m tools.gpu_check --out docs/bench $(if $(BUDGET),--budget-s $(BUDGET))

# Retrain the embedded default model (docs/training.md) and regenerate the ablation (docs/ablation.md).
# About 44 min on an idle 2-core machine (configs/default.yaml); writes the model, its log and
# curves in place.
train-default: setup
	$(PY) -m pgpt_ros.training.train --config configs/default.yaml --out pgpt_ros/default_model \
		--log-dir docs/default_model

ablation: setup
	$(PY) -m tools.ablation --config configs/ablation.yaml --out docs

# The default model's heads to ONNX in the per-user cache, checked against torch in ONNX Runtime;
# MODEL=dir for another model (docs/export.md).
export: setup
	$(PY) -m pgpt_ros.export.cli $(or $(MODEL),pgpt_ros/default_model)

# Head latency per backend, precision and K -> docs/bench/heads-default-<device>.json
bench-heads: setup
	$(PY) -m pgpt_ros.bench.cli heads --out docs/bench

# Speech recognition per engine and bias mode on the synthesised commands, then end of speech ->
# detections on the real nodes (docs/voice.md). About 25 min on 2 cores.
bench-voice: setup
	$(PY) -m pgpt_ros.bench.cli voice --out docs/bench
	$(PY) -m pgpt_ros.bench.cli voice-latency --out docs/bench
