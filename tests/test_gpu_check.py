"""``make gpu-check`` end to end in its dry mode (tiny shapes on the CPU), its time budget, failure
capture, and the targets' arithmetic."""

from __future__ import annotations

import json

import pytest

from tools import gpu_check
from tools.gpu_targets import evaluate_targets

SECTIONS = ("machine", "cuda_tests", "llm_7b", "llm_0_5b", "lora_training_7b",
            "precision_parity", "head_backends", "compile_cache_0_5b", "llm_7b_compiled")  # fmt: skip


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu-check")
    assert gpu_check.main(["--out", str(out), "--dry", "--budget-s", "900"]) == 0
    return json.loads((out / "gpu-check-dry.json").read_text())


def test_dry_run_writes_every_section_with_a_measurement_or_a_reason(dry_run):
    assert dry_run["mode"].startswith("dry")
    for name in SECTIONS:
        status = dry_run[name]["status"]
        assert status == "ok" or status.startswith("skipped: "), (name, status)
    assert dry_run["machine"]["torch"] and dry_run["machine"]["packages"]["transformers"]
    assert not dry_run["cuda_tests"]["failed"] and dry_run["cuda_tests"]["tests"] > 0
    for name in ("llm_7b", "llm_0_5b"):
        fast = dry_run[name]["fast_path"]
        assert fast["one_object_cached_frame_ms"] > 0 and fast["first_command_ms"] > 0
        assert dry_run[name]["ratios"]["shikra_over_cached"] > 0
    assert dry_run["llm_0_5b"]["preset"] == "tiny-qwen"
    training = dry_run["lora_training_7b"]
    assert training["tokens_per_s"] > 0 and 0 < training["mfu"] < 1
    parity = dry_run["precision_parity"]["per_dtype"]["bfloat16"]
    assert parity["boxes_compared"] > 0 and parity["min_box_iou"] > 0.5
    rows = dry_run["head_backends"]["rows"]
    assert {r["backend"] for r in rows if r["status"] == "ok"} >= {"torch", "onnxruntime"}
    assert {r["backend"] for r in rows if r["status"].startswith("not run")} == {"tensorrt"}


def test_dry_run_judges_every_target(dry_run):
    targets = dry_run["targets"]
    assert len(targets) == len(evaluate_targets({}))
    assert all(t["pass"] in (True, False, None) for t in targets)
    judged = {t["target"] for t in targets if t["pass"] is not None}
    assert any("0.5B" in t for t in judged) and any("LoRA" in t for t in judged)
    unmeasured = [t for t in targets if t["pass"] is None]
    assert all(t["measured"].startswith("not measured") for t in unmeasured)


def test_a_section_over_the_budget_is_skipped_and_a_failing_one_recorded():
    runner = gpu_check.Runner(budget_s=10)
    runner.run("too long", 60, lambda: {"value": 1})
    runner.run("broken", 1, lambda: 1 / 0)
    runner.run("fine", 1, lambda: {"value": 2})
    assert runner.results["too long"]["status"].startswith("skipped: needs about 60 s")
    assert runner.results["broken"]["status"] == "failed: ZeroDivisionError: division by zero"
    assert runner.results["fine"] == {"status": "ok", "value": 2,
                                      "seconds": runner.results["fine"]["seconds"]}  # fmt: skip


def test_targets_judge_measured_numbers():
    """H100-like numbers: the cached command at 1.4x its floor passes, an MFU of 0.30 fails, a
    skipped section leaves its targets unjudged."""
    results = {
        "llm_7b": {"status": "ok", "ratios": {"cached_command_over_floor": 1.8,
                                              "shikra_over_cached": 19.0},
                   "fast_path": {"first_command_ms": 12000.0}},
        "llm_7b_compiled": {"status": "ok", "ratios": {"cached_command_over_floor": 1.4},
                            "fast_path": {"first_command_ms": 75000.0}},
        "lora_training_7b": {"status": "ok", "mfu": 0.30, "peak_memory_gb": 21.0},
        "llm_0_5b": {"status": "skipped: needs about 30 s, 2 s of the 450 s budget left"},
    }  # fmt: skip
    verdicts = {t["target"]: t["pass"] for t in evaluate_targets(results)}
    assert verdicts["7B fp16: one-object command on a cached frame over the floor"] is True
    assert (
        verdicts["7B fp16: Shikra-style 25-token generate over our one-object cached command"]
        is True
    )
    assert verdicts["first command after start, CUDA graphs captured (7B and 0.5B)"] is True
    compiled = "first command after start, step compiled with a cold cache (0.5B, 7B)"
    assert verdicts[compiled] is False  # 75 s
    assert verdicts["7B LoRA step, batch 8, bf16, checkpointing: model FLOPs utilisation"] is False
    assert verdicts["7B LoRA step, batch 8: peak GPU memory"] is True
    assert verdicts["0.5B fp16: one-object command on a cached frame"] is None


def test_without_cuda_the_gpu_run_says_how_to_dry_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="--dry"):
        gpu_check.main(["--out", str(tmp_path)])
