"""Head backends: the ``<vis>`` heads run by torch, ONNX Runtime or TensorRT, behind one interface.

- ``torch``: the model's own heads: the reference.
- ``onnxruntime``: the exported graphs (``pgpt_ros.export``), CPU here; CUDA and TensorRT
  execution providers where installed.
- ``tensorrt``: engines built from the same graphs, cached next to them with a manifest keyed on
  the graph, TensorRT version, GPU and precision, run on torch's CUDA stream.
- ``auto``: TensorRT when importable and the model is on a GPU, else ONNX Runtime where it can run
  on the model's device, else torch; the choice and its reason are logged once.

Exported graphs and engines are cached under ``engine_dir`` (one subdirectory per model, named by
the hash of its head weights); the default is a per-user cache directory (``default_engine_dir``),
never the working directory.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pgpt_ros.export.onnx_export import check_exportable, ensure_onnx
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.runtime.backends.base import ExportedHeads, HeadBackend, HeadOutputs
from pgpt_ros.runtime.backends.onnxruntime_heads import onnxruntime_heads, onnxruntime_status
from pgpt_ros.runtime.backends.tensorrt_heads import tensorrt_heads, tensorrt_status
from pgpt_ros.runtime.backends.torch_heads import TorchHeads

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
CACHE_ENV = "PGPT_ROS_CACHE"

__all__ = ["BACKENDS", "ExportedHeads", "HeadBackend", "HeadOutputs", "TorchHeads",
           "auto_choice", "default_engine_dir", "select_head_backend"]  # fmt: skip


def default_engine_dir() -> Path:
    """Where exported heads and engines are cached when no directory is given: ``$PGPT_ROS_CACHE``,
    else ``$XDG_CACHE_HOME/pgpt_ros/engines``, else ``~/.cache/pgpt_ros/engines``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pgpt_ros" / "engines"


def auto_choice(model: PerceptionGPT) -> tuple[str, str]:
    """The backend ``auto`` picks for ``model`` and the reason."""
    if model.config.head != "perception":
        return "torch", f'the model\'s "{model.config.head}" head has no exported heads'
    device = model.device
    trt_ok, trt_why = tensorrt_status()
    if trt_ok and device.type == "cuda":
        return "tensorrt", f"{trt_why}, model on {device}"
    not_trt = trt_why if not trt_ok else f"{trt_why}, but the model is on {device}"
    ort_ok, ort_why = onnxruntime_status(device)
    if ort_ok:
        return "onnxruntime", f"{ort_why}; not tensorrt: {not_trt}"
    return "torch", f"not tensorrt: {not_trt}; not onnxruntime: {ort_why}"


def select_head_backend(
    name: str,
    model: PerceptionGPT,
    *,
    engine_dir: str | Path | None = None,
    force_rebuild: bool = False,
) -> HeadBackend:
    """The head backend ``name`` for ``model``, exporting ONNX and building engines as needed.

    Arguments:
        name (str): "auto", "torch", "onnxruntime" or "tensorrt".
        engine_dir: the cache root (None: ``default_engine_dir()``).
        force_rebuild (bool): rebuild TensorRT engines even if the cache holds valid ones.
    Raises:
        ValueError: an unknown name, or an exported backend for a model without heads.
        RuntimeError: an explicitly named backend that cannot run here (the message says why).
    """
    if name not in BACKENDS:
        raise ValueError(f"head_backend must be one of {BACKENDS}, got {name!r}")
    cache = Path(engine_dir) if engine_dir else default_engine_dir()
    if name == "auto":
        choice, reason = auto_choice(model)
        log.info("head backend auto -> %s: %s", choice, reason)
        if choice == "torch":
            return TorchHeads(model)
        try:
            return _exported_backend(choice, model, cache, force_rebuild)
        except Exception as error:  # auto never fails the node: the torch heads always work
            log.warning("head backend %s failed (%s); falling back to torch", choice, error)
            return TorchHeads(model)
    if name == "torch":
        return TorchHeads(model)
    check_exportable(model)
    return _exported_backend(name, model, cache, force_rebuild)


def _exported_backend(
    name: str, model: PerceptionGPT, engine_dir: Path, force_rebuild: bool
) -> ExportedHeads:
    if name == "onnxruntime":
        ok, why = onnxruntime_status(model.device)
        if not ok and "not importable" in why:
            raise RuntimeError(f"head_backend onnxruntime: {why}; pip install onnxruntime")
        log.info("exported heads cache: %s", engine_dir)
        directory, manifest = ensure_onnx(model, engine_dir)
        return onnxruntime_heads(model, directory, manifest)
    ok, why = tensorrt_status()
    if not ok:
        raise RuntimeError(f"head_backend tensorrt: {why}")
    if model.device.type != "cuda":
        raise RuntimeError(
            f"head_backend tensorrt needs the model on a CUDA device, not {model.device}"
        )
    log.info("exported heads and engines cache: %s", engine_dir)
    directory, manifest = ensure_onnx(model, engine_dir)
    return tensorrt_heads(model, directory, manifest, force_rebuild=force_rebuild)
