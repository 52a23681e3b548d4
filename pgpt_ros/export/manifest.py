"""The JSON manifest written next to the exported ONNX heads.

It says what each graph takes and returns (read back from the graph itself, not from what the
exporter was asked for), each file's sha256, and the hash of the model weights it came from, so a
runtime can tell a stale or damaged export from a good one without running it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from pgpt_ros.export.names import BATCH_AXIS, OPT_BATCH

_ONNX_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16"}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class TensorInfo:
    """A graph input or output: name, shape (``"batch"`` for the dynamic axis) and dtype."""

    name: str
    shape: list[int | str]
    dtype: str

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape without its leading batch axis."""
        return tuple(int(d) for d in self.shape[1:])


@dataclass
class HeadRecord:
    """One exported head graph."""

    file: str
    sha256: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    @classmethod
    def from_onnx(cls, path: Path) -> HeadRecord:
        """Reads the I/O of ``path``; raises ValueError unless only the first axis is dynamic."""
        graph = onnx.load(str(path), load_external_data=False).graph
        infos = [[_tensor_info(v, path) for v in values] for values in (graph.input, graph.output)]
        return cls(file=path.name, sha256=sha256_file(path), inputs=infos[0], outputs=infos[1])


def _tensor_info(value: onnx.ValueInfoProto, path: Path) -> TensorInfo:
    dims = value.type.tensor_type.shape.dim
    shape: list[int | str] = [d.dim_param if d.dim_param else d.dim_value for d in dims]
    dynamic = [i for i, d in enumerate(shape) if isinstance(d, str)]
    if dynamic != [0]:
        raise ValueError(f"{path.name}: {value.name} must be dynamic in axis 0 only, got {shape}")
    shape[0] = BATCH_AXIS
    dtype = _ONNX_DTYPES.get(value.type.tensor_type.elem_type)
    if dtype is None:
        raise ValueError(f"{path.name}: {value.name} has an unsupported element type")
    return TensorInfo(value.name, shape, dtype)


@dataclass
class OnnxManifest:
    """What ``export_heads`` wrote.

    Attributes:
        model_hash (str): ``heads_fingerprint`` of the source model (head weights + shapes).
        source (str): the model directory exported, "" for an in-memory model.
        source_sha256 (str): sha256 of that directory's weights file ("" without one).
        opset (int), max_batch (int): the export settings.
        versions (dict): torch, onnx and onnxscript versions that wrote the graphs.
        heads (dict): head name -> ``HeadRecord``.
    """

    model_hash: str
    source: str
    source_sha256: str
    opset: int
    max_batch: int
    versions: dict[str, str]
    heads: dict[str, HeadRecord] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        text = json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(path)  # atomic: a reader never sees half a manifest

    @classmethod
    def load(cls, path: Path) -> OnnxManifest:
        """Raises ValueError for a file that is not a manifest of this layout."""
        try:
            data = json.loads(path.read_text())
            heads = {
                name: HeadRecord(
                    file=h["file"],
                    sha256=h["sha256"],
                    inputs=[TensorInfo(**t) for t in h["inputs"]],
                    outputs=[TensorInfo(**t) for t in h["outputs"]],
                )
                for name, h in data.pop("heads").items()
            }
            return cls(**data, heads=heads)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a valid ONNX manifest: {error}") from None

    def damaged_files(self, directory: Path) -> list[str]:
        """Heads whose ONNX file is missing or whose sha256 differs from the manifest."""
        return [
            name
            for name, head in self.heads.items()
            if not (directory / head.file).is_file()
            or sha256_file(directory / head.file) != head.sha256
        ]


def profile_shapes(record: HeadRecord, max_batch: int) -> dict[str, list[list[int]]]:
    """Input name -> [min, opt, max] shapes of a TensorRT optimisation profile for one graph:
    batch 1, ``OPT_BATCH`` and ``max_batch`` (native TensorRT and ORT's TensorRT provider share
    it, so both build for the same range of K)."""
    return {
        t.name: [[b, *t.sample_shape] for b in (1, min(OPT_BATCH, max_batch), max_batch)]
        for t in record.inputs
    }
