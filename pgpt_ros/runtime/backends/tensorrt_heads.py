"""TensorRT as the head backend: engines built from the exported graphs, cached, run on torch's
CUDA stream.

``import tensorrt`` happens inside the functions, so this module imports on machines without
TensorRT and the policy code (``load_head_engines``) is tested with fakes.

Precision policy: every head is built with the FP16 builder flag; the mask decoder
keeps its FP16 engine only if it matches the float32 torch mask decoder within
``MASK_FP16_TOLERANCE`` (relative) on random inputs, else an FP32 engine is built. The verdict is
stored with the engine in the cache manifest, so it is measured once per engine.

Written against the TensorRT 10 Python API (named tensors, ``execute_async_v3``). No machine this
project was developed on has TensorRT: docs/export.md says what is tested where.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pgpt_ros.export.manifest import HeadRecord, OnnxManifest, profile_shapes
from pgpt_ros.export.names import HEADS, MASK_DECODER
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.runtime.backends.base import ExportedHeads
from pgpt_ros.runtime.backends.engine_cache import EngineCache, EngineKey
from pgpt_ros.runtime.backends.parity import random_head_inputs, relative_error

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 1 << 30  # builder scratch memory limit: the heads are small
MASK_FP16_TOLERANCE = 1e-2  # max |fp16 - fp32| / max |fp32| of the mask logits
PARITY_BATCH = 4


def tensorrt_status() -> tuple[bool, str]:
    """Whether TensorRT's Python API is importable, and its version or the import error."""
    try:
        import tensorrt as trt
    except Exception as error:  # ImportError, or a stub package that fails on import
        return False, f"tensorrt is not importable ({type(error).__name__}: {error})"
    if not hasattr(trt, "Builder"):
        return False, "the installed tensorrt package has no Builder (a PyPI stub?)"
    return True, f"TensorRT {trt.__version__}"


def engine_key(
    record: HeadRecord, precision: str, device: torch.device, max_batch: int, trt_version: str
) -> EngineKey:
    """The cache key of one head's engine on ``device``."""
    major, minor = torch.cuda.get_device_capability(device)
    return EngineKey(
        onnx_sha256=record.sha256,
        tensorrt_version=trt_version,
        gpu_name=torch.cuda.get_device_name(device),
        compute_capability=f"{major}.{minor}",
        precision=precision,
        shapes=profile_shapes(record, max_batch),
    )


def build_engine(
    onnx_path: Path,
    shapes: dict[str, list[list[int]]],
    precision: str,
    workspace_bytes: int = WORKSPACE_BYTES,
) -> bytes:
    """Parses ``onnx_path`` and builds a serialized engine with one optimisation profile."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in shapes.items():
        profile.set_shape(name, tuple(low), tuple(opt), tuple(high))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build {onnx_path.name} ({precision})")
    return bytes(serialized)


class TensorRTRunner:
    """Runs one engine on CUDA tensors: addresses bound to torch memory, enqueued on torch's
    current stream, so nothing passes through the host and no synchronisation is needed."""

    def __init__(self, engine: Any, device: torch.device) -> None:
        import tensorrt as trt

        self.engine = engine
        self.context = engine.create_execution_context()
        self.device = device
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]

    def __call__(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # Inputs freed on return stay valid: torch reuses them only for later work on this stream.
        bound = [tensors[n].to(self.device, torch.float32).contiguous() for n in self.inputs]
        for name, tensor in zip(self.inputs, bound, strict=True):
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            outputs[name] = torch.empty(shape, dtype=torch.float32, device=self.device)
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream(self.device).cuda_stream
        with torch.cuda.device(self.device):
            ok = self.context.execute_async_v3(stream)
        if not ok:
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return outputs


def load_head_engines(
    cache: EngineCache,
    *,
    key_for: Callable[[str, str], EngineKey],
    build: Callable[[str, str], bytes],
    deserialize: Callable[[bytes], Any],
    mask_fp16_error: Callable[[Any], float],
    force_rebuild: bool = False,
) -> dict[str, tuple[Any, str]]:
    """Every head's engine and precision, through the cache, with the precision policy above.

    Arguments:
        key_for, build: (head, precision) -> the cache key, the serialized engine.
        deserialize: bytes -> engine (None when unusable).
        mask_fp16_error: FP16 mask engine -> its relative error against float32 torch.
    """
    engines = {}
    for head in HEADS:
        file = HEADS[head].engine_file("fp16")
        result = cache.load_or_build(
            file,
            key_for(head, "fp16"),
            build=lambda head=head: build(head, "fp16"),
            deserialize=deserialize,
            force_rebuild=force_rebuild,
        )
        engines[head] = (result.engine, "fp16")
        if head != MASK_DECODER.name:
            continue
        notes = cache.notes(file)
        if "fp16_error" not in notes:
            error = mask_fp16_error(result.engine)
            cache.set_notes(file, fp16_error=error, fp16_ok=error <= MASK_FP16_TOLERANCE)
            notes = cache.notes(file)
        if notes["fp16_ok"]:
            log.info("mask decoder FP16 kept (relative error %.2e)", notes["fp16_error"])
            continue
        log.info(
            "mask decoder FP16 relative error %.2e > %.0e: using an FP32 engine",
            notes["fp16_error"],
            MASK_FP16_TOLERANCE,
        )
        fp32 = cache.load_or_build(
            HEADS[head].engine_file("fp32"),
            key_for(head, "fp32"),
            build=lambda head=head: build(head, "fp32"),
            deserialize=deserialize,
            force_rebuild=force_rebuild,
        )
        engines[head] = (fp32.engine, "fp32")
    return engines


def tensorrt_heads(
    model: PerceptionGPT, directory: Path, manifest: OnnxManifest, *, force_rebuild: bool = False
) -> ExportedHeads:
    """The TensorRT head backend for ``model`` (on a CUDA device), engines cached in
    ``directory`` next to the ONNX they are built from."""
    import tensorrt as trt

    device = model.device
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    records = manifest.heads

    def mask_fp16_error(engine: Any) -> float:
        inputs, seed = random_head_inputs(model, PARITY_BATCH)
        names = MASK_DECODER.inputs
        reference = copy.deepcopy(model.mask_decoder).float()  # the model itself is untouched
        with torch.no_grad():
            expected = reference(*(inputs[n].float() for n in names))
        got = TensorRTRunner(engine, device)({n: inputs[n] for n in names})
        error = relative_error(got[MASK_DECODER.outputs[0]], expected)
        log.info("mask decoder FP16 parity on random inputs (seed %d): %.2e", seed, error)
        return error

    with torch.cuda.device(device):  # TensorRT builds and loads on the current CUDA device
        engines = load_head_engines(
            EngineCache(directory),
            key_for=lambda head, precision: engine_key(
                records[head], precision, device, manifest.max_batch, trt.__version__
            ),
            build=lambda head, precision: build_engine(
                directory / records[head].file,
                profile_shapes(records[head], manifest.max_batch),
                precision,
            ),
            deserialize=runtime.deserialize_cuda_engine,
            mask_fp16_error=mask_fp16_error,
            force_rebuild=force_rebuild,
        )
    precisions = {p for _, p in engines.values()}
    return ExportedHeads(
        "tensorrt",
        "fp16" if precisions == {"fp16"} else "mixed",
        {head: TensorRTRunner(engine, device) for head, (engine, _) in engines.items()},
        manifest,
        device=device,
        dtype=model.dtype,
    )
