"""The issue's targets for the GPU path, judged against what ``tools.gpu_check`` measured.

Each target is ``{"target", "measured", "limit", "pass"}``; ``pass`` is None (with the reason in
``measured``) when the section that measures it did not run or failed.
"""

from __future__ import annotations

from collections.abc import Callable

Target = dict


def _get(results: dict, *path: str):
    """The value at ``path``, or None when a section is missing, skipped or failed."""
    node = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _judge(name: str, value: float | None, limit: float, better: Callable[[float, float], bool],
           section: dict | None, unit: str = "") -> Target:  # fmt: skip
    if value is None:
        status = (section or {}).get("status", "not run")
        why = "this machine has no such measurement" if status == "ok" else status[:120]
        return {"target": name, "measured": f"not measured ({why})", "limit": limit,
                "pass": None}  # fmt: skip
    return {"target": name, "measured": round(value, 3), "unit": unit, "limit": limit,
            "pass": bool(better(value, limit))}  # fmt: skip


def _at_most(value: float, limit: float) -> bool:
    return value <= limit


def _at_least(value: float, limit: float) -> bool:
    return value >= limit


def _best_cached_ratio(results: dict) -> float | None:
    """The 7B one-object cached-frame command over its floor, graphs or compiled (the better)."""
    ratios = [_get(results, name, "ratios", "cached_command_over_floor")
              for name in ("llm_7b", "llm_7b_compiled")]  # fmt: skip
    ratios = [r for r in ratios if r is not None]
    return min(ratios) if ratios else None


def _cuda_tests_failed(results: dict) -> float | None:
    failed = _get(results, "cuda_tests", "failed")
    return None if failed is None else float(len(failed))


def _parity(results: dict) -> tuple[float | None, float | None]:
    """(answers differing from float32, lowest box IoU) over the half-precision dtypes."""
    per_dtype = _get(results, "precision_parity", "per_dtype")
    if not per_dtype:
        return None, None
    commands = results["precision_parity"]["commands"]
    differing = sum(commands - d["same_answer_text"] for d in per_dtype.values())
    ious = [d["min_box_iou"] for d in per_dtype.values() if d["min_box_iou"] is not None]
    return float(differing), (min(ious) if ious else None)


def _heads_outside_bound(results: dict) -> float | None:
    rows = _get(results, "head_backends", "rows")
    if rows is None:
        return None
    failing = [r for r in rows if r["status"].startswith("failed")
               or (r["status"] == "ok" and not r["within_bound"])]  # fmt: skip
    return float(len(failing))


def _slowest_first_command(results: dict, paths: list[tuple[str, ...]]) -> float | None:
    """The slowest ``first_command_ms`` (as seconds) of the results at ``paths``."""
    found = [_get(results, *path, "fast_path", "first_command_ms") for path in paths]
    found = [v for v in found if v is not None]
    return max(found) / 1000 if found else None


def _restart_ratio(results: dict) -> float | None:
    """First command after a restart over the first command of a cold compile cache."""
    first = _get(results, "compile_cache_0_5b", "first_command_ms")
    return None if first is None else first["warm"] / first["cold"]


def evaluate_targets(results: dict) -> list[Target]:
    """Every target of the issue with its measurement and verdict."""
    sections = {k: v for k, v in results.items() if isinstance(v, dict)}
    differing, min_iou = _parity(results)
    graphs_first = _slowest_first_command(results, [("llm_7b",), ("llm_0_5b",)])
    compiled_first = _slowest_first_command(results, [("llm_7b_compiled",),
                                                      ("compile_cache_0_5b", "cold")])  # fmt: skip
    return [
        _judge("CUDA-only tests: failures", _cuda_tests_failed(results), 0, _at_most,
               sections.get("cuda_tests")),
        _judge("7B fp16: one-object command on a cached frame over the floor",
               _best_cached_ratio(results), 1.5, _at_most, sections.get("llm_7b"), "x"),
        _judge("7B fp16: Shikra-style 25-token generate over our one-object cached command",
               _get(results, "llm_7b", "ratios", "shikra_over_cached"), 10.0, _at_least,
               sections.get("llm_7b"), "x"),
        _judge("0.5B fp16: one-object command on a cached frame",
               _get(results, "llm_0_5b", "fast_path", "one_object_cached_frame_ms"), 10.0,
               _at_most, sections.get("llm_0_5b"), "ms"),
        _judge("0.5B fp16: one-object command on a new frame",
               _get(results, "llm_0_5b", "fast_path", "one_object_new_frame_ms"), 25.0,
               _at_most, sections.get("llm_0_5b"), "ms"),
        _judge("first command after start, CUDA graphs captured (7B and 0.5B)", graphs_first,
               60.0, _at_most, sections.get("llm_7b"), "s"),
        _judge("first command after start, step compiled with a cold cache (0.5B, 7B)",
               compiled_first, 60.0, _at_most, sections.get("compile_cache_0_5b"), "s"),
        _judge("compilation reused across restarts: warm over cold first command",
               _restart_ratio(results), 0.5, _at_most, sections.get("compile_cache_0_5b"), "x"),
        _judge("7B LoRA step, batch 8, bf16, checkpointing: model FLOPs utilisation",
               _get(results, "lora_training_7b", "mfu"), 0.35, _at_least,
               sections.get("lora_training_7b")),
        _judge("7B LoRA step, batch 8: peak GPU memory",
               _get(results, "lora_training_7b", "peak_memory_gb"), 40.0, _at_most,
               sections.get("lora_training_7b"), "GB"),
        _judge("fp16/bf16 answers: commands whose answer differs from fp32", differing, 0,
               _at_most, sections.get("precision_parity")),
        _judge("fp16/bf16 answers: lowest box IoU against fp32", min_iou, 0.98, _at_least,
               sections.get("precision_parity")),
        _judge("head backends failing, or outside their error bound against torch",
               _heads_outside_bound(results), 0, _at_most, sections.get("head_backends")),
    ]  # fmt: skip
