"""pgpt-bench llm: the floor model reproduces measured H100 numbers, and the bench runs."""

import json
import math

import pytest
import torch

from pgpt_ros.bench import floor, llm


def test_floor_of_the_7b_shape_matches_the_h100_measurements():
    """Measured on an H100 (2.97 TB/s copy, 739 TFLOP/s fp16; docs/performance.md): one decoded
    token cannot beat 4.5 ms (6.6 B fp16 weights read once), vision + prefill of ~616 tokens
    11.2 ms."""
    model = llm.build_bench_model("llava-1.5-7b", "meta", torch.float16, None)
    shape = floor.Shape.of(model, torch.float16, llm.COMMAND)
    low = floor.floor(shape, {"copy_bandwidth_GBps": 2970.0, "matmul_TFLOPs": 739.0}, 5)
    assert low["decode_ms_per_token"] == pytest.approx(4.5, rel=0.05)
    assert low["vision_prefill_ms"] == pytest.approx(11.2, rel=0.05)
    # A cached frame skips the image: its command prefill is bound by reading the weights once.
    assert low["command_prefill_ms"] == pytest.approx(low["decode_ms_per_token"], rel=0.05)
    steps = low["one_object_cached_frame_ms"] - low["command_prefill_ms"]
    assert steps == pytest.approx(4 * low["decode_ms_per_token"])


def test_bench_runs_the_tiny_config_and_writes_its_json(tmp_path):
    argv = ["--preset", "tiny", "--device", "cpu", "--repeats", "1", "--warmup", "0"]
    assert llm.main([*argv, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "llm-tiny-cpu.json").read_text())
    assert result["machine"]["device"] and result["dtype"] == "float32"
    for path in ("fast_path", "transformers", "floor", "machine_ceilings", "ratios"):
        assert result[path] and all(math.isfinite(v) for v in result[path].values()), path
    assert result["tokens"]["one_object_answer"] == llm.OBJECT_WORDS + 2
