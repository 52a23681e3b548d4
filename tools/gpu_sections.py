"""The sections of ``tools.gpu_check``: each returns a dict of what it measured (JSON-ready).

They call the same code the product runs (``pgpt-bench llm`` and ``train``, the ``Perceiver``,
the head backends) so the check measures what is served.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import torch

from pgpt_ros.bench import llm as llm_bench
from pgpt_ros.bench import train as train_bench
from pgpt_ros.bench.heads import time_backend
from pgpt_ros.metrics import box_iou
from pgpt_ros.model import build_model, preset_config
from pgpt_ros.runtime import Perceiver, load_model
from pgpt_ros.runtime.backends import TorchHeads, select_head_backend
from pgpt_ros.runtime.backends.parity import compare_backends, random_head_inputs
from pgpt_ros.runtime.backends.tensorrt_heads import tensorrt_status
from pgpt_ros.runtime.loading import DTYPES

REPO = Path(__file__).resolve().parents[1]
# The test files that hold CUDA-only tests (selected with -k "cuda or tensorrt").
CUDA_TEST_FILES = ["tests/test_runtime_fast_path.py", "tests/test_heads.py"]
PACKAGES = ("transformers", "peft", "accelerate", "safetensors", "tokenizers", "onnx",
            "onnxscript", "onnxruntime", "onnxruntime-gpu", "numpy", "pillow", "pytest")  # fmt: skip
# Relative error bounds of a head backend against the torch heads (as tests/test_heads.py).
BOUNDS = {"fp32": 1e-4, "fp16": 1e-2, "mixed": 1e-2}


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def driver() -> str:
    """The NVIDIA driver version as nvidia-smi reports it (or why it could not)."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
        return done.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError) as error:
        return f"unknown ({type(error).__name__})"


def machine() -> dict:
    """The machine named: GPU, driver, CUDA, and the versions every result depends on."""
    info: dict = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "cudnn": torch.backends.cudnn.version(),
        "packages": {name: version(name) for name in PACKAGES},
        "tensorrt": tensorrt_status()[1],
        "gpu": None,
    }
    try:
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError as error:
        info["onnxruntime_providers"] = f"not importable ({error})"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 1e9, 1),
                    compute_capability=f"{props.major}.{props.minor}",
                    multiprocessors=props.multi_processor_count, driver=driver())  # fmt: skip
    return info


def junit_summary(report: Path) -> dict:
    """Counts, failures and skip reasons from a pytest JUnit XML report."""
    root = ElementTree.parse(report).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    failed, skipped, passed = [], [], []
    for case in suite.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            failed.append({"test": name, "message": (problem.get("message") or "")[:300]})
        elif case.find("skipped") is not None:
            skipped.append({"test": name, "reason": case.find("skipped").get("message", "")})
        else:
            passed.append(name)
    return {"tests": len(passed) + len(failed) + len(skipped), "passed": passed,
            "failed": failed, "skipped": skipped}  # fmt: skip


def llm(argv: list[str], scratch: Path) -> dict:
    """``pgpt-bench llm`` with ``argv``, its result (nothing written)."""
    return llm_bench.measure(llm_bench.parse_args(["--out", str(scratch), *argv]))


def training(argv: list[str]) -> dict:
    """``pgpt-bench train`` with ``argv``, its result (nothing written)."""
    return train_bench.bench(train_bench.parse_args(["--out", "unused", *argv]))


def llm_process(argv: list[str], scratch: Path, deadline: float) -> dict:
    """``pgpt-bench llm`` with ``argv`` in a fresh process (a restart, as a node's), killed at
    ``deadline`` (``time.monotonic()``); inductor's cache lives in ``scratch/inductor``."""
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(scratch / "inductor"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = Path(tempfile.mkdtemp(dir=scratch))
    command = [sys.executable, "-m", "pgpt_ros.bench.llm", *argv, "--out", str(out)]
    subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True,
                   timeout=max(1.0, deadline - time.monotonic()))  # fmt: skip
    return json.loads(next(out.glob("llm-*.json")).read_text())


def compile_cache(preset: str, scratch: Path, deadline: float) -> dict:
    """The compiled step in two fresh processes sharing one inductor cache directory: the first
    compiles (cold), the second is a restart that should reuse the compiled kernels."""
    argv = ["--preset", preset, "--device", "cuda", "--dtype", "float16", "--compile",
            "--repeats", "3", "--warmup", "1"]  # fmt: skip
    cold = llm_process(argv, scratch, deadline)
    warm = llm_process(argv, scratch, deadline)
    first = {"cold": cold["fast_path"]["first_command_ms"],
             "warm": warm["fast_path"]["first_command_ms"]}  # fmt: skip
    files = sum(1 for path in (scratch / "inductor").rglob("*") if path.is_file())
    return {"first_command_ms": first, "cold": cold, "warm_fast_path": warm["fast_path"],
            "inductor_cache_files": files}  # fmt: skip


def precision_parity(device: str, dtypes: list[str], commands: int) -> dict:
    """The embedded default model's answers to ShapesRef test commands in each of ``dtypes``
    against float32, through the Perceiver (torch heads): same text, box IoU, score change."""
    from pgpt_ros.data.shapesref import ShapesRef

    def answers(dtype: str) -> list:
        perceiver = Perceiver.load("", device=device, dtype=dtype, head_backend="torch")
        data = ShapesRef("test", image_size=perceiver.model.config.image_size, length=commands)
        out = []
        for i in range(commands):
            perceiver.set_image(data[i].image)
            out.append(perceiver.answer(data[i].command))
        return out

    reference = answers("float32")
    result: dict = {"commands": commands, "model": "embedded default", "per_dtype": {}}
    for dtype in dtypes:
        same, ious, scores = 0, [], []
        for ref, got in zip(reference, answers(dtype), strict=True):
            same += ref.text == got.text and len(ref.detections) == len(got.detections)
            for a, b in zip(ref.detections, got.detections, strict=False):
                ious.append(float(box_iou(a.box[None], b.box[None])[0, 0]))
                scores.append(abs(a.score - b.score))
        result["per_dtype"][dtype] = {
            "same_answer_text": same,
            "boxes_compared": len(ious),
            "min_box_iou": min(ious, default=None),
            "mean_box_iou": float(np.mean(ious)) if ious else None,
            "max_score_change": max(scores, default=None),
        }
    return result


def head_backends(device: str, dry: bool) -> dict:
    """Every exported head backend that can run here against the torch heads, on random inputs
    (K = 4), with its decode time at K = 1; backends that cannot run are listed with why."""
    models = {"default": load_model("", device, "float32")}
    if not dry:
        torch.manual_seed(0)
        models["llava-7b-heads"] = build_model(preset_config("llava-7b-heads")).to(device)
    dtypes = ["float32", "float16"] if device == "cuda" else ["float32"]
    rows = []
    with tempfile.TemporaryDirectory() as engines, torch.inference_mode():
        for model_name, base in models.items():
            for dtype in dtypes:
                model = base.to(device, DTYPES[dtype])
                reference = TorchHeads(model)
                for backend_name in ("torch", "onnxruntime", "tensorrt"):
                    row = {"model": model_name, "dtype": dtype, "backend": backend_name}
                    try:
                        backend = select_head_backend(backend_name, model, engine_dir=engines)
                    except (RuntimeError, ValueError) as error:
                        rows.append({**row, "status": f"not run: {error}"})
                        continue
                    try:
                        rows.append({**row, **_parity_row(reference, backend, model)})
                    except Exception as error:  # one backend's failure is its row, not the end
                        rows.append({**row, "status": f"failed: {type(error).__name__}: {error}"})
    return {"rows": rows}


def _parity_row(reference: TorchHeads, backend, model) -> dict:
    """The backend's worst relative error against torch at K = 4 and its decode time at K = 1."""
    inputs, seed = random_head_inputs(model, 4)
    errors = compare_backends(reference, backend, inputs)
    worst = max(rel for _, rel in errors.values())
    bound = BOUNDS.get(backend.precision, 1e-2)
    decode, _ = time_backend(backend, model, 1, repeats=20, warmup=3)
    return {"status": "ok", "precision": backend.precision, "seed": seed,
            "relative_error": worst, "bound": bound, "within_bound": worst <= bound,
            "decode_ms_median": float(np.median(decode))}  # fmt: skip
