"""ONNX Runtime as the head backend: the exported graphs, on the model's device where ORT can.

CPU here; CUDA and TensorRT execution providers where onnxruntime-gpu is installed, with ORT's own
TensorRT engine cache next to the exported graphs. Inputs and outputs are bound to torch tensors'
memory (no copies through numpy).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from pgpt_ros.export.manifest import HeadRecord, OnnxManifest, profile_shapes
from pgpt_ros.export.names import MASK_DECODER
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.runtime.backends.base import ExportedHeads

log = logging.getLogger(__name__)


class OrtRunner:
    """Runs one ONNX graph with I/O bound to torch tensors' memory (no copies through numpy).

    On CUDA the inputs stay on the GPU; ORT runs on its own stream unless torch's current stream
    is a real (non-default) stream, so torch's stream is synchronised before the run.
    """

    def __init__(self, session, output_shapes: dict[str, tuple[int, ...]], device: torch.device):
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]
        self.output_shapes = output_shapes
        self.device = device

    def __call__(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        kind, index = self.device.type, self.device.index or 0
        binding = self.session.io_binding()
        bound = [tensors[name].to(self.device, torch.float32).contiguous() for name in self.inputs]
        for name, tensor in zip(self.inputs, bound, strict=True):
            binding.bind_input(
                name, kind, index, np.float32, tuple(tensor.shape), tensor.data_ptr()
            )
        batch = bound[0].shape[0]
        outputs = {
            name: torch.empty((batch, *shape), dtype=torch.float32, device=self.device)
            for name, shape in self.output_shapes.items()
        }
        for name, tensor in outputs.items():
            binding.bind_output(
                name, kind, index, np.float32, tuple(tensor.shape), tensor.data_ptr()
            )
        if kind == "cuda":
            torch.cuda.current_stream(self.device).synchronize()
        self.session.run_with_iobinding(binding)
        return outputs


def ort_providers(
    device: torch.device, cache_dir: Path, record: HeadRecord, max_batch: int
) -> list:
    """Execution providers for one head graph on ``device``, best first, among those installed.

    TensorRT's EP caches its engines in ``cache_dir`` (under ``engines/``), is given the same
    batch 1..max_batch profile as the native TensorRT backend (without one it rebuilds whenever
    K leaves the range seen so far) and runs float32 (the native TensorRT backend is the FP16
    path); CUDA's EP runs on torch's current stream when that is a real stream.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers: list = []
    if device.type == "cuda":
        index = device.index or 0
        if "TensorrtExecutionProvider" in available:
            cache_dir.mkdir(parents=True, exist_ok=True)
            trt_options = {
                "device_id": index,
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache_dir),
                "trt_fp16_enable": False,
            }
            profile = profile_shapes(record, max_batch)
            for i, bound in enumerate(("min", "opt", "max")):
                trt_options[f"trt_profile_{bound}_shapes"] = ",".join(
                    f"{name}:{'x'.join(map(str, shapes[i]))}" for name, shapes in profile.items()
                )
            providers.append(("TensorrtExecutionProvider", trt_options))
        if "CUDAExecutionProvider" in available:
            cuda_options: dict = {"device_id": index}
            stream = torch.cuda.current_stream(device).cuda_stream
            if stream:  # ORT treats 0 (the legacy default stream) as "none given"
                cuda_options["user_compute_stream"] = str(stream)
            providers.append(("CUDAExecutionProvider", cuda_options))
    providers.append("CPUExecutionProvider")
    return providers


def onnxruntime_heads(
    model: PerceptionGPT, directory: Path, manifest: OnnxManifest
) -> ExportedHeads:
    """Sessions for the exported heads in ``directory``, on the model's device where ORT can."""
    import onnxruntime as ort

    device = model.device
    cache_dir = directory / "ort_trt_cache"
    providers = {
        name: ort_providers(device, cache_dir, record, manifest.max_batch)
        for name, record in manifest.heads.items()
    }
    gpu = len(providers[MASK_DECODER.name]) > 1
    run_device = device if gpu else torch.device("cpu")
    if device.type == "cuda" and not gpu:
        log.warning(
            "onnxruntime has no CUDA or TensorRT provider here (install onnxruntime-gpu): the heads "
            "run on the CPU and every call copies through host memory"
        )
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT warns about providers it skips
    # The same CPU thread budget as torch (the node and the benchmarks set it), not every core.
    options.intra_op_num_threads = torch.get_num_threads()
    runners = {}
    for name, record in manifest.heads.items():
        session = ort.InferenceSession(
            str(directory / record.file), sess_options=options, providers=providers[name]
        )
        shapes = {o.name: o.sample_shape for o in record.outputs}
        runners[name] = OrtRunner(session, shapes, run_device)
    used = runners[MASK_DECODER.name].session.get_providers()[0]
    log.info("onnxruntime heads on %s (%s)", run_device, used)
    return ExportedHeads("onnxruntime", "fp32", runners, manifest, device=device, dtype=model.dtype)


def onnxruntime_status(device: torch.device) -> tuple[bool, str]:
    """Whether ONNX Runtime can run the heads on ``device`` without host copies, and why."""
    try:
        import onnxruntime as ort
    except ImportError as error:
        return False, f"onnxruntime is not importable ({error})"
    providers = ort.get_available_providers()
    if device.type == "cpu":
        return True, f"onnxruntime {ort.__version__} CPU provider for a CPU model"
    gpu = [p for p in providers if p in ("TensorrtExecutionProvider", "CUDAExecutionProvider")]
    if gpu:
        return True, f"onnxruntime {ort.__version__} with {gpu[0]}"
    return False, f"onnxruntime {ort.__version__} has no GPU provider (only {providers})"
