"""Head backends: the ``<vis>`` heads run by torch, ONNX Runtime or TensorRT, behind one interface.

The decoding loop calls ``backend.decode`` when the LLM emits ``<vis>`` and ``backend.encode_box``
to feed the box back; it cannot tell which backend ran (nanoowl's one-output-type rule).

- ``torch``: the model's own heads (the same math as ``PerceptionGPT.decode_vis``): the reference.
- ``onnxruntime``: the exported graphs (``pgpt_ros.export``), CPU here; CUDA and TensorRT
  execution providers where installed, with ORT's engine cache under the export directory.
- ``tensorrt``: engines built from the same graphs, cached under ``engines/``
  (``pgpt_ros.export.engine_cache``), run on CUDA tensors on torch's current stream.
- ``auto``: TensorRT when importable and the model is on a GPU, else ONNX Runtime where it can run
  on the model's device, else torch; the choice and its reason are logged once.

Exported graphs take and return float32 (K objects = the batch); this module casts at the
boundary, so a float16 model works with every backend.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from pgpt_ros.export import tensorrt_build
from pgpt_ros.export.manifest import HeadRecord, OnnxManifest
from pgpt_ros.export.names import BOX_DECODER, BOX_ENCODER, HEADS, MASK_DECODER, SCORE_HEAD
from pgpt_ros.export.onnx_export import check_exportable, ensure_onnx, random_boxes
from pgpt_ros.model import PerceptionGPT

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
PRECISIONS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


@dataclass
class HeadOutputs:
    """What the heads give for K ``<vis>`` objects, on the model's device and dtype.

    Attributes:
        boxes (torch.Tensor): (K, 4) normalised xyxy.
        mask_logits (torch.Tensor): (K, M, M) over the full image.
        iou (torch.Tensor): (K,) predicted IoU in [0, 1].
    """

    boxes: torch.Tensor
    mask_logits: torch.Tensor
    iou: torch.Tensor


class HeadBackend(Protocol):
    """The interface the decoding loop calls."""

    name: str  # "torch" | "onnxruntime" | "tensorrt"
    precision: str  # "fp32" | "fp16" | "bf16" | "mixed"

    def decode(
        self, vis_state: torch.Tensor, image_feats: torch.Tensor, pixel_values: torch.Tensor
    ) -> HeadOutputs:
        """(K, d) states, (K, N, d) image features, (K, 3, S, S) pixels -> the heads' outputs."""
        ...

    def encode_box(self, boxes: torch.Tensor) -> torch.Tensor:
        """(K, 4) boxes -> (K, d) box encodings (the caller adds the ``<vis>`` embedding)."""
        ...


class TorchHeads:
    """The model's own heads: the reference every other backend is compared with."""

    name = "torch"

    def __init__(self, model: PerceptionGPT) -> None:
        self.model = model
        self.precision = PRECISIONS.get(model.dtype, str(model.dtype))

    def decode(
        self, vis_state: torch.Tensor, image_feats: torch.Tensor, pixel_values: torch.Tensor
    ) -> HeadOutputs:
        dtype = self.model.dtype
        boxes, masks, iou = self.model.decode_vis(
            vis_state.to(dtype), image_feats.to(dtype), pixel_values.to(dtype)
        )
        return HeadOutputs(boxes, masks, iou)

    def encode_box(self, boxes: torch.Tensor) -> torch.Tensor:
        return self.model.box_encoder(boxes.to(self.model.dtype))


# A runner executes one exported head: float32 tensors by input name -> outputs by name.
HeadRunner = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


class ExportedHeads:
    """The decode chain over the four exported graphs; ONNX Runtime and TensorRT differ only in
    the runner that executes one graph.

    Arguments:
        name (str), precision (str): reported to the node's diagnostics.
        runners (dict): head name -> ``HeadRunner``.
        manifest (OnnxManifest): the graphs' output shapes and batch bound (a larger K is run
            in chunks; K = 0 gives empty outputs without running anything).
        device, dtype: the model's; outputs are returned there.
    """

    def __init__(
        self,
        name: str,
        precision: str,
        runners: dict[str, HeadRunner],
        manifest: OnnxManifest,
        *,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.name = name
        self.precision = precision
        self.runners = runners
        self.device = device
        self.dtype = dtype
        self.max_batch = manifest.max_batch
        self.output_shapes = {
            head: record.outputs[0].sample_shape for head, record in manifest.heads.items()
        }

    def _run(self, head: str, **tensors: torch.Tensor) -> torch.Tensor:
        """One graph's single output, float32 on the model's device."""
        inputs = {k: v.to(self.device, torch.float32).contiguous() for k, v in tensors.items()}
        output = HEADS[head].outputs[0]
        batch = next(iter(inputs.values())).shape[0]
        if batch == 0:
            return torch.empty((0, *self.output_shapes[head]), device=self.device)
        chunks = [
            self.runners[head]({k: v[start : start + self.max_batch] for k, v in inputs.items()})
            for start in range(0, batch, self.max_batch)
        ]
        return torch.cat([c[output].to(self.device) for c in chunks])

    def decode(
        self, vis_state: torch.Tensor, image_feats: torch.Tensor, pixel_values: torch.Tensor
    ) -> HeadOutputs:
        boxes = self._run(BOX_DECODER.name, vis_state=vis_state, image_feats=image_feats)
        masks = self._run(
            MASK_DECODER.name,
            vis_state=vis_state,
            image_feats=image_feats,
            boxes=boxes,
            pixel_values=pixel_values,
        )
        iou = self._run(SCORE_HEAD.name, vis_state=vis_state, boxes=boxes)
        return HeadOutputs(boxes.to(self.dtype), masks.to(self.dtype), iou.to(self.dtype))

    def encode_box(self, boxes: torch.Tensor) -> torch.Tensor:
        return self._run(BOX_ENCODER.name, boxes=boxes).to(self.dtype)


# ------------------------------------------------------------------------------- ONNX Runtime
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
            profile = tensorrt_build.profile_shapes(record, max_batch)
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


# ---------------------------------------------------------------------------------- selection
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


def auto_choice(model: PerceptionGPT) -> tuple[str, str]:
    """The backend ``auto`` picks for ``model`` and the reason."""
    if model.config.head != "perception":
        return "torch", f'the model\'s "{model.config.head}" head has no exported heads'
    device = model.device
    trt_ok, trt_why = tensorrt_build.tensorrt_status()
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
    engine_dir: str | Path = "engines",
    force_rebuild: bool = False,
) -> HeadBackend:
    """The head backend ``name`` for ``model``, exporting ONNX and building engines as needed.

    Arguments:
        name (str): "auto", "torch", "onnxruntime" or "tensorrt".
        engine_dir: where exported graphs and engines are cached (one subdirectory per model,
            named by the hash of its head weights).
        force_rebuild (bool): rebuild TensorRT engines even if the cache holds valid ones.
    Raises:
        ValueError: an unknown name, or an exported backend for a model without heads.
        RuntimeError: an explicitly named backend that cannot run here (the message says why).
    """
    if name not in BACKENDS:
        raise ValueError(f"head_backend must be one of {BACKENDS}, got {name!r}")
    if name == "auto":
        choice, reason = auto_choice(model)
        log.info("head backend auto -> %s: %s", choice, reason)
        if choice == "torch":
            return TorchHeads(model)
        try:
            return _exported_backend(choice, model, Path(engine_dir), force_rebuild)
        except Exception as error:  # auto never fails the node: the torch heads always work
            log.warning("head backend %s failed (%s); falling back to torch", choice, error)
            return TorchHeads(model)
    if name == "torch":
        return TorchHeads(model)
    check_exportable(model)
    return _exported_backend(name, model, Path(engine_dir), force_rebuild)


def _exported_backend(
    name: str, model: PerceptionGPT, engine_dir: Path, force_rebuild: bool
) -> ExportedHeads:
    if name == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError as error:
            raise RuntimeError(
                f"head_backend onnxruntime: {error}; pip install onnxruntime"
            ) from None
        directory, manifest = ensure_onnx(model, engine_dir)
        return onnxruntime_heads(model, directory, manifest)
    ok, why = tensorrt_build.tensorrt_status()
    if not ok:
        raise RuntimeError(f"head_backend tensorrt: {why}")
    if model.device.type != "cuda":
        raise RuntimeError(
            f"head_backend tensorrt needs the model on a CUDA device, not {model.device}"
        )
    directory, manifest = ensure_onnx(model, engine_dir)
    return tensorrt_build.tensorrt_heads(model, directory, manifest, force_rebuild=force_rebuild)


# ------------------------------------------------------------------------------------- parity
def random_head_inputs(
    model: PerceptionGPT, batch: int, *, seed: int | None = None
) -> tuple[dict[str, torch.Tensor], int]:
    """Fresh random head inputs on the model's device and dtype, and the seed that made them
    (drawn from the OS unless given, so every parity run sees new numbers, reproducibly)."""
    seed = int.from_bytes(os.urandom(4), "little") if seed is None else seed
    generator = torch.Generator().manual_seed(seed)
    cfg = model.config
    d, n, s = cfg.hidden_size, cfg.num_image_tokens, cfg.image_size
    inputs = {
        "vis_state": torch.randn(batch, d, generator=generator),
        "image_feats": torch.randn(batch, n, d, generator=generator),
        "pixel_values": torch.randn(batch, 3, s, s, generator=generator),
        "boxes": random_boxes(batch, generator),
    }
    return {k: v.to(model.device, model.dtype) for k, v in inputs.items()}, seed


def relative_error(output: torch.Tensor, reference: torch.Tensor) -> float:
    """max |output - reference| over max |reference| (float32)."""
    diff = (output.float() - reference.float()).abs().max()
    return float(diff / reference.float().abs().max().clamp_min(1e-6))


def compare_backends(
    reference: HeadBackend, candidate: HeadBackend, inputs: dict[str, torch.Tensor]
) -> dict[str, tuple[float, float]]:
    """(max abs error, relative error) of every head output of ``candidate`` against
    ``reference`` on the same inputs."""
    states, feats, pixels = inputs["vis_state"], inputs["image_feats"], inputs["pixel_values"]
    ref, out = reference.decode(states, feats, pixels), candidate.decode(states, feats, pixels)
    pairs = {
        "boxes": (out.boxes, ref.boxes),
        "mask_logits": (out.mask_logits, ref.mask_logits),
        "iou": (out.iou, ref.iou),
        "box_embedding": (
            candidate.encode_box(inputs["boxes"]),
            reference.encode_box(inputs["boxes"]),
        ),
    }
    return {
        key: (float((o.float() - r.float()).abs().max()), relative_error(o, r))
        for key, (o, r) in pairs.items()
    }
