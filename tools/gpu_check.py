"""``make gpu-check``: the GPU path verified on one GPU in at most 8 minutes, one JSON of results.

    python3 -m tools.gpu_check --out docs/bench        # on a CUDA machine (what make gpu-check runs)
    python3 -m tools.gpu_check --out /tmp/check --dry  # the same steps at tiny shapes on the CPU

Runs with the machine's own ``python3`` from the repository root: no virtual environment, no ROS,
no network (the GPU machine of this project has torch 2.11 + CUDA 13 and transformers 5.17). In
order, each section under a time budget (a section that would not fit is skipped with the reason,
one that fails is recorded with its error, and the rest still run):

1. ``machine``: GPU, driver, CUDA, library versions;
2. ``cuda_tests``: the test files with CUDA-only tests, under pytest;
3. ``llm_7b``, ``llm_0_5b``: ``pgpt-bench llm`` at the LLaVA-1.5-7B and LLaVA-Interleave-0.5B
   shapes, fp16, CUDA graphs (random weights);
4. ``lora_training_7b``: ``pgpt-bench train``, 20 LoRA steps at the 7B shape, batch 8, bfloat16,
   gradient checkpointing: step time, tokens/s, MFU, peak memory;
5. ``precision_parity``: the embedded default model's answers to ShapesRef commands in fp16 and
   bf16 against fp32 through the Perceiver: same tokens, box IoU;
6. ``head_backends``: every head backend that can run here against the torch heads;
7. ``compile_cache_0_5b``: the compiled step at the 0.5B shape in two fresh processes sharing
   inductor's cache directory: the first command cold, then after a restart;
8. ``llm_7b_compiled``: the compiled step at the 7B shape, if time is left.

``targets`` then lists the issue's targets with the measured value and pass/fail. Writes
``OUT/gpu-check-<gpu>.json`` (``gpu-check-dry.json`` with ``--dry``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from tools import gpu_sections
from tools.gpu_targets import evaluate_targets

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 450  # of the 8 minutes; the rest is start-up and margin


class Runner:
    """Runs sections in order within a time budget; records each result or why there is none."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.started = time.perf_counter()
        self.results: dict[str, dict] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def run(self, name: str, estimate_s: float, section: Callable[[], dict]) -> None:
        """Runs ``section`` unless ``estimate_s`` would overrun the budget."""
        left = self.budget_s - self.elapsed()
        if estimate_s > left:
            self.results[name] = {
                "status": f"skipped: needs about {estimate_s:.0f} s, {max(left, 0):.0f} s of "
                f"the {self.budget_s:.0f} s budget left"
            }
            print(f"[gpu-check] {name}: skipped (time)", flush=True)
            return
        print(f"[gpu-check] {name} (about {estimate_s:.0f} s) ...", flush=True)
        start = time.perf_counter()
        try:
            result = {"status": "ok", **section()}
        except Exception as error:  # one failing section must not hide the others' results
            tail = traceback.format_exc().splitlines()[-12:]
            result = {"status": f"failed: {type(error).__name__}: {error}", "traceback": tail}
        result["seconds"] = round(time.perf_counter() - start, 1)
        self.results[name] = result
        print(f"[gpu-check] {name}: {result['status'][:100]} ({result['seconds']} s)", flush=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def skipped(reason: str) -> Callable[[], dict]:
    """A section that reports why it does not run here."""
    return lambda: {"status": f"skipped: {reason}"}


def pytest_section(test_args: list[str], timeout_s: float) -> Callable[[], dict]:
    """Runs pytest in a child process (the machine's interpreter, the source tree first on the
    path) and reads its JUnit report."""

    def run() -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "junit.xml"
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
            command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                       f"--junitxml={report}", *test_args]  # fmt: skip
            done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=timeout_s)  # fmt: skip
            result = gpu_sections.junit_summary(report) if report.is_file() else {}
        result.update(exit_code=done.returncode, command=" ".join(command[1:]),
                      output_tail=done.stdout.splitlines()[-15:])  # fmt: skip
        if done.returncode not in (0, 5):
            result["status"] = f"failed: pytest exit code {done.returncode}"
        return result

    return run


def plan(args: argparse.Namespace, runner: Runner, out: Path) -> None:
    """The sections, in the order the issue ranks them (must-haves first)."""
    dry = args.dry
    cuda = torch.cuda.is_available() and not dry
    big, small = ("tiny", "tiny-qwen") if dry else ("llava-1.5-7b", "llava-interleave-qwen-0.5b")
    device = "cuda" if cuda else "cpu"
    half = "float16" if cuda else "float32"
    repeats = ["--repeats", "1", "--warmup", "0"] if dry else ["--repeats", "5", "--warmup", "2"]
    runner.run("machine", 5, gpu_sections.machine)
    tests = gpu_sections.CUDA_TEST_FILES if cuda else [*gpu_sections.CUDA_TEST_FILES, "-k",
                                                      "cuda or tensorrt"]  # fmt: skip
    runner.run("cuda_tests", 40 if dry else 110, pytest_section(tests, 300))
    for name, preset, cost in (("llm_7b", big, 70), ("llm_0_5b", small, 30)):
        llm_args = ["--preset", preset, "--device", device, "--dtype", half, *repeats]
        runner.run(name, 60 if dry else cost, lambda a=llm_args: gpu_sections.llm(a, out))
    train_args = ["--preset", big, "--device", device,
                  *(["--batch", "2", "--steps", "2", "--warmup", "1"] if dry else
                    ["--batch", "8", "--steps", "20", "--warmup", "3"])]  # fmt: skip
    runner.run("lora_training_7b", 30 if dry else 60, lambda: gpu_sections.training(train_args))
    dtypes = ["float16", "bfloat16"] if cuda else ["bfloat16"]
    commands = 3 if dry else 20
    runner.run("precision_parity", 30,
               lambda: gpu_sections.precision_parity(device, dtypes, commands))  # fmt: skip
    runner.run("head_backends", 40 if dry else 60,
               lambda: gpu_sections.head_backends(device, dry))  # fmt: skip
    if dry:
        reason = "dry run on the CPU: inductor compiles for minutes; the GPU run measures it"
        runner.run("compile_cache_0_5b", 0, skipped(reason))
        runner.run("llm_7b_compiled", 0, skipped(reason))
        return
    # Compilation runs in child processes (a restart is a new process), each stopped at the
    # budget's end so the check never overruns it.
    deadline = time.monotonic() + runner.budget_s - runner.elapsed()
    runner.run("compile_cache_0_5b", 150,
               lambda: gpu_sections.compile_cache(small, out, deadline))  # fmt: skip
    compiled = ["--preset", big, "--device", device, "--dtype", half, *repeats, "--compile"]
    runner.run("llm_7b_compiled", 150,
               lambda: gpu_sections.llm_process(compiled, out, deadline))  # fmt: skip


def output_name(results: dict, dry: bool) -> str:
    if dry:
        return "gpu-check-dry.json"
    gpu = results.get("machine", {}).get("gpu") or "no-gpu"
    return "gpu-check-" + re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-") + ".json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-check", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the JSON")
    parser.add_argument("--dry", action="store_true",
                        help="tiny shapes on the CPU: proves every step runs (seconds)")  # fmt: skip
    parser.add_argument("--budget-s", type=float, default=BUDGET_S,
                        help="time for all sections; a section that would overrun is skipped")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.dry and not torch.cuda.is_available():
        raise SystemExit(
            "gpu-check needs a CUDA GPU and a CUDA build of torch (this torch "
            f"{torch.__version__}, CUDA {torch.version.cuda}); --dry runs the steps on the CPU"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    runner = Runner(args.budget_s)
    with tempfile.TemporaryDirectory() as scratch:
        plan(args, runner, Path(scratch))
    results = {
        "mode": "dry: tiny shapes on the CPU, targets computed only to test the arithmetic"
        if args.dry
        else "gpu",
        "command": "python3 -m tools.gpu_check " + " ".join(argv or sys.argv[1:]),
        "total_seconds": round(runner.elapsed(), 1),
        "budget_seconds": args.budget_s,
        **runner.results,
    }
    results["targets"] = evaluate_targets(results)
    path = args.out / output_name(results, args.dry)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    for target in results["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "----"}[target["pass"]]
        print(f"{verdict}  {target['target']}: {target['measured']}")
    print(f"wrote {path} ({results['total_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
