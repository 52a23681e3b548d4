"""``pgpt-export MODEL_DIR``: the model's heads to ONNX, checked against torch in ONNX Runtime.

    pgpt-export pgpt_ros/default_model                 # -> <cache>/heads-<hash>/
    pgpt-export runs/my_model --output /tmp/heads      # -> /tmp/heads/
    pgpt-export runs/my_model --no-check

Exit status 0 when every head output matches torch within ``--tolerance`` (max absolute error,
fresh random inputs at K = 1 and K = 3), 1 when not, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from pgpt_ros.export.names import MAX_BATCH
from pgpt_ros.export.onnx_export import export_dir, export_heads
from pgpt_ros.model import PerceptionGPT, load_pretrained
from pgpt_ros.runtime.backends import TorchHeads, default_engine_dir
from pgpt_ros.runtime.backends.onnxruntime_heads import onnxruntime_heads
from pgpt_ros.runtime.backends.parity import compare_backends, random_head_inputs

CHECK_BATCHES = (1, 3)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pgpt-export", description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", type=Path, help="a directory written by save_pretrained")
    parser.add_argument(
        "--engine-dir",
        type=Path,
        default=None,
        help="cache root (default: the per-user cache the node uses, "
        f"{default_engine_dir()}); the heads go to ENGINE_DIR/heads-<hash>/",
    )
    parser.add_argument("--output", type=Path, help="write into this directory instead")
    parser.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime check")
    parser.add_argument(
        "--tolerance", type=float, default=1e-4, help="max absolute error allowed (default 1e-4)"
    )
    return parser.parse_args(argv)


def check_parity(model: PerceptionGPT, directory: Path, manifest, tolerance: float) -> bool:
    """Prints the max errors of ONNX Runtime against torch; True when all are within tolerance."""
    reference, candidate = TorchHeads(model), onnxruntime_heads(model, directory, manifest)
    ok = True
    print(f"{'K':>3} {'seed':>10}  {'output':<14} {'max abs err':>12} {'rel err':>10}")
    for batch in CHECK_BATCHES:
        inputs, seed = random_head_inputs(model, batch)
        with torch.no_grad():
            errors = compare_backends(reference, candidate, inputs)
        for output, (abs_err, rel_err) in errors.items():
            ok &= abs_err <= tolerance
            print(f"{batch:>3} {seed:>10}  {output:<14} {abs_err:>12.3e} {rel_err:>10.3e}")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = load_pretrained(args.model_dir)
        directory = args.output or export_dir(model, args.engine_dir or default_engine_dir())
        manifest = export_heads(model, directory, source=args.model_dir)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"pgpt-export: {error}", file=sys.stderr)
        return 2
    print(f"exported to {directory} (opset {manifest.opset}, batch 1..{MAX_BATCH}):")
    for head in manifest.heads.values():
        inputs = ", ".join(f"{t.name}{tuple(t.shape)}" for t in head.inputs)
        outputs = ", ".join(f"{t.name}{tuple(t.shape)}" for t in head.outputs)
        print(f"  {head.file:<18} {inputs} -> {outputs}  sha256 {head.sha256[:12]}")
    if args.no_check:
        return 0
    if check_parity(model, directory, manifest, args.tolerance):
        print(f"ONNX Runtime matches torch within {args.tolerance:g}")
        return 0
    print(f"ONNX Runtime differs from torch by more than {args.tolerance:g}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
