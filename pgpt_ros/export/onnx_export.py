"""ONNX export of the ``<vis>`` heads: box decoder, box encoder, mask decoder, score head.

The export boundary follows the cost boundary (as SAM exports its prompt encoder and mask decoder,
not its image encoder): the LLM and the vision tower stay in torch, and each head becomes one
graph whose inputs are the tensors the decoding loop already holds. Every head in
``pgpt_ros.model`` is tensor-only with no data-dependent control flow, so no export wrapper is
needed; each head is exported from a float32 CPU copy, so the model itself is never edited and a
float16 GPU model exports the same way.

Exporter: ``torch.onnx.export(dynamo=True)`` (torch.export + onnxscript), opset 18, the batch axis
dynamic through ``dynamic_shapes`` and every other axis static.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import onnx
import onnxscript
import torch
from torch import nn

from pgpt_ros.export.manifest import HeadRecord, OnnxManifest, sha256_file
from pgpt_ros.export.names import BATCH_AXIS, HEADS, MAX_BATCH, ONNX_MANIFEST, OPSET, sample_shapes
from pgpt_ros.model.checkpoint import WEIGHTS_NAME
from pgpt_ros.model.perception_gpt import PerceptionGPT

log = logging.getLogger(__name__)

# Shape-relevant config fields: two models with equal head weights but other shapes differ.
_SHAPE_FIELDS = (
    "box_decoder",
    "box_window",
    "mask_decoder",
    "head_width",
    "mask_size",
    "image_size",
    "sam",
)


def check_exportable(model: PerceptionGPT) -> None:
    """Raises ValueError for a model without ``<vis>`` heads (the text-coordinate baseline)."""
    if model.config.head != "perception":
        raise ValueError(
            f'model head is "{model.config.head}": only "perception" models have heads to export'
        )


def heads_fingerprint(model: PerceptionGPT) -> str:
    """sha256 of everything an exported head depends on: the head weights, the shapes, the source
    files that define the heads' modules, the export settings and the exporter's version. It names
    the export directory, so a retrained model, edited head code or a new torch never reuses a
    stale graph."""
    check_exportable(model)
    digest = hashlib.sha256()
    settings = {f: getattr(model.config, f) for f in _SHAPE_FIELDS}
    settings.update(
        shapes=sample_shapes(model.config),
        opset=OPSET,
        max_batch=MAX_BATCH,
        torch=torch.__version__,
    )
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for path in _source_files(model):
        digest.update(path.read_bytes())
    for name in HEADS:
        for key, tensor in sorted(getattr(model, name).state_dict().items()):
            digest.update(f"{name}.{key}{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def _source_files(model: PerceptionGPT) -> list[Path]:
    """The Python files defining every module inside the heads (this project's and, for the SAM
    decoder, transformers'), sorted so the hash does not depend on traversal order."""
    files = set()
    for name in HEADS:
        for module in getattr(model, name).modules():
            source = getattr(sys.modules.get(type(module).__module__), "__file__", None)
            if source:
                files.add(Path(source))
    return sorted(files)


def export_dir(model: PerceptionGPT, engine_dir: str | Path, fingerprint: str = "") -> Path:
    """Where this model's heads (ONNX and engines) live under ``engine_dir`` (``fingerprint``:
    its ``heads_fingerprint`` if already computed; hashing a SAM decoder's ViT is not free)."""
    return Path(engine_dir) / f"heads-{(fingerprint or heads_fingerprint(model))[:16]}"


def random_boxes(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, 4) valid normalised xyxy boxes (x2 >= x1, y2 >= y1)."""
    corners = torch.rand(batch, 2, 2, generator=generator)  # (B, corner, xy)
    low, high = corners.min(dim=1).values, corners.max(dim=1).values
    return torch.cat([low, high], dim=-1)


def example_inputs(
    model: PerceptionGPT, names: tuple[str, ...], batch: int, generator: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """Random float32 CPU inputs for the named head tensors."""
    shapes = sample_shapes(model.config)
    return tuple(
        random_boxes(batch, generator)
        if name == "boxes"
        else torch.randn(batch, *shapes[name], generator=generator)
        for name in names
    )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silences the exporter's chatter for one export: torch.onnx warns per missing torchvision
    operator (never used here), onnxscript and onnx_ir log every optimisation pass at INFO, and
    every input sharing the one batch Dim is warned about. Errors still pass."""
    loggers = [
        logging.getLogger(name)
        for name in ("torch.onnx._internal.exporter._registration", "onnxscript", "onnx_ir")
    ]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*shares the same shape constraints.*")
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_head(
    head: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    *,
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
    max_batch: int = MAX_BATCH,
    opset: int = OPSET,
) -> None:
    """One head to one checked ONNX file, dynamic in the first axis only.

    The example batch must be at least 2: torch.export specialises a size-1 axis to a constant.
    """
    batch = torch.export.Dim(BATCH_AXIS, min=1, max=max_batch)
    with _quiet_exporter():
        torch.onnx.export(
            head,
            args,
            str(path),
            input_names=list(input_names),
            output_names=list(output_names),
            opset_version=opset,
            dynamo=True,
            dynamic_shapes=tuple({0: batch} for _ in args),
            external_data=False,
            verbose=False,
        )
    onnx.checker.check_model(str(path), full_check=True)


def export_heads(
    model: PerceptionGPT,
    directory: str | Path,
    *,
    source: str | Path = "",
    max_batch: int = MAX_BATCH,
    opset: int = OPSET,
    fingerprint: str = "",
) -> OnnxManifest:
    """Exports the four heads of ``model`` into ``directory`` and writes ``manifest.json`` last
    (so a directory with a manifest is complete).

    Arguments:
        model (PerceptionGPT): a perception model on any device and dtype; it is not modified.
        source (str | Path): the model directory it was loaded from, recorded with the sha256 of
            its weights file.
        fingerprint (str): the model's ``heads_fingerprint`` if already computed.
    """
    check_exportable(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ONNX_MANIFEST).unlink(missing_ok=True)
    generator = torch.Generator().manual_seed(0)
    records = {}
    for spec in HEADS.values():
        head = copy.deepcopy(getattr(model, spec.name)).to("cpu", torch.float32).eval()
        path = directory / spec.onnx_file
        export_head(
            head,
            example_inputs(model, spec.inputs, 2, generator),
            path,
            input_names=spec.inputs,
            output_names=spec.outputs,
            max_batch=max_batch,
            opset=opset,
        )
        records[spec.name] = HeadRecord.from_onnx(path)
        log.info("exported %s (%d bytes)", path, path.stat().st_size)
    weights = Path(source) / WEIGHTS_NAME if source else None
    manifest = OnnxManifest(
        model_hash=fingerprint or heads_fingerprint(model),
        source=str(source),
        source_sha256=sha256_file(weights) if weights and weights.is_file() else "",
        opset=opset,
        max_batch=max_batch,
        versions={
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxscript": onnxscript.__version__,
        },
        heads=records,
    )
    manifest.save(directory / ONNX_MANIFEST)
    return manifest


def ensure_onnx(model: PerceptionGPT, engine_dir: str | Path) -> tuple[Path, OnnxManifest]:
    """The model's exported heads under ``engine_dir``: reused when the manifest names this model
    and every file's sha256 matches, exported again otherwise (each decision logged)."""
    fingerprint = heads_fingerprint(model)
    directory = export_dir(model, engine_dir, fingerprint)
    manifest_path = directory / ONNX_MANIFEST
    if manifest_path.is_file():
        try:
            manifest = OnnxManifest.load(manifest_path)
        except ValueError as error:
            log.warning("re-exporting the heads: %s", error)
        else:
            damaged = manifest.damaged_files(directory)
            if manifest.model_hash != fingerprint:
                log.warning("re-exporting the heads: %s is from another model", manifest_path)
            elif damaged:
                log.warning("re-exporting the heads: %s missing or corrupt", ", ".join(damaged))
            else:
                log.info("using the exported heads in %s", directory)
                return directory, manifest
    log.info("exporting the heads to ONNX in %s", directory)
    return directory, export_heads(model, directory, fingerprint=fingerprint)
