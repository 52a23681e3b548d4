"""``pgpt-bench heads``: latency of the ``<vis>`` heads per backend, precision and batch.

    pgpt-bench heads --out docs/bench                  # the embedded default model, CPU
    pgpt-bench heads --out DIR --model runs/my_model --batches 1 4 8 --repeats 200
    pgpt-bench heads --out DIR --preset llava-7b-heads # heads of LLaVA-1.5-7B's shapes
    pgpt-bench heads --out DIR --device cuda --dtypes float32 float16   # torch, ORT, TensorRT
    (``python -m pgpt_ros.bench.heads ...`` runs the same)

Times ``decode`` (box decoder -> mask decoder -> score head on K objects: what the decoding loop
calls per ``<vis>``) and ``encode_box`` separately, on random inputs, after warm-up; on CUDA every
call is synchronised. Backends that cannot run here are listed with the reason, not timed.
Writes ``OUT/heads-<model>-<device>.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tqdm import tqdm

from pgpt_ros.bench.common import machine_description, summary, time_calls, write_result
from pgpt_ros.model import PerceptionGPT, build_model, preset_config
from pgpt_ros.runtime.backends import BACKENDS, HeadBackend, select_head_backend
from pgpt_ros.runtime.backends.base import PRECISIONS
from pgpt_ros.runtime.backends.parity import random_head_inputs
from pgpt_ros.runtime.backends.tensorrt_heads import tensorrt_status
from pgpt_ros.runtime.loading import DTYPES, load_model

EXPORTED = tuple(b for b in BACKENDS if b != "auto")


def bench_model(model_dir: str, preset: str | None) -> tuple[PerceptionGPT, str]:
    """The model to time and where it came from: a preset with random weights (latency does not
    depend on trained weights), else a saved model ("" = the embedded default)."""
    if preset is not None:
        torch.manual_seed(0)
        return build_model(preset_config(preset)), f"{preset} preset, random weights"
    return load_model(model_dir), model_dir or "embedded default model"


def time_backend(
    backend: HeadBackend, model: PerceptionGPT, batch: int, repeats: int, warmup: int
) -> tuple[list[float], list[float]]:
    """Per-call milliseconds of ``decode`` and of ``encode_box`` on K = ``batch`` random objects."""
    inputs, _ = random_head_inputs(model, batch)
    states, feats, pixels = (inputs[k] for k in ("vis_state", "image_feats", "pixel_values"))
    with torch.inference_mode():
        decode = time_calls(
            lambda: backend.decode(states, feats, pixels), model.device, repeats, warmup
        )
        encode = time_calls(
            lambda: backend.encode_box(inputs["boxes"]), model.device, repeats, warmup
        )
    return decode, encode


def versions() -> dict[str, str]:
    found = {"torch": torch.__version__, "tensorrt": tensorrt_status()[1]}
    try:
        import onnxruntime

        found["onnxruntime"] = f"{onnxruntime.__version__} {onnxruntime.get_available_providers()}"
    except ImportError as error:
        found["onnxruntime"] = f"not importable ({error})"
    return found


def bench(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    base, source = bench_model(args.model, args.preset)
    cfg = base.config
    result: dict = {
        "model": source,
        "shapes": {
            "hidden_size": cfg.hidden_size,
            "image_tokens": cfg.num_image_tokens,
            "image_size": cfg.image_size,
            "mask_size": cfg.mask_size,
            "head_width": cfg.head_width,
            "box_decoder": cfg.box_decoder,
            "mask_decoder": cfg.mask_decoder,
        },
        "machine": machine_description(device),
        "versions": versions(),
        "repeats": args.repeats,
        "results": [],
        "not_run": [],
    }
    plan = [(d, b) for d in args.dtypes for b in args.backends]
    for dtype_name, backend_name in tqdm(plan, desc="backends", unit="backend"):
        model = base.to(device, DTYPES[dtype_name])
        try:
            backend = select_head_backend(backend_name, model, engine_dir=args.engine_dir)
        except (RuntimeError, ValueError) as error:
            result["not_run"].append(
                {"backend": backend_name, "dtype": dtype_name, "reason": str(error)}
            )
            continue
        for batch in args.batches:
            decode, encode = time_backend(backend, model, batch, args.repeats, args.warmup)
            result["results"].append(
                {
                    "backend": backend.name,
                    "precision": backend.precision,
                    "model_dtype": PRECISIONS[model.dtype],
                    "batch": batch,
                    "decode": summary(decode),
                    "encode_box": summary(encode),
                }
            )
    return result


def table(result: dict) -> str:
    lines = [
        "| backend | precision | K | decode median ms | decode min ms | encode_box median ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in result["results"]:
        lines.append(
            f"| {row['backend']} | {row['precision']} | {row['batch']} "
            f"| {row['decode']['median_ms']:.3f} | {row['decode']['min_ms']:.3f} "
            f"| {row['encode_box']['median_ms']:.3f} |"
        )
    lines += [
        f"| {r['backend']} ({r['dtype']}) | not run: {r['reason']} | | | | |"
        for r in result["not_run"]
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(prog="pgpt-bench heads", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the JSON")
    parser.add_argument("--model", default="", help="a saved model (default: the embedded one)")
    parser.add_argument("--preset", default=None,
                        help="time a registry preset with random weights instead (e.g. tiny, "
                        "llava-7b-heads: LLaVA-1.5-7B's heads on a one-layer stand-in)")  # fmt: skip
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=sorted(DTYPES),
        default=None,
        help="model dtypes (default: float32 and float16 on CUDA, float32 on the CPU)",
    )
    parser.add_argument("--backends", nargs="+", choices=EXPORTED, default=list(EXPORTED))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--engine-dir", type=Path, default=None,
                        help="exported heads and engines (default: the per-user cache)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.dtypes is None:
        args.dtypes = ["float32", "float16"] if args.device.startswith("cuda") else ["float32"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    if args.device == "cpu" and "float16" in args.dtypes:
        raise SystemExit("float16 needs a GPU; use float32 (or bfloat16) on the CPU")
    result = bench(args)
    result["command"] = "pgpt-bench heads " + " ".join(argv if argv is not None else [])
    label = args.preset or (Path(args.model).name if args.model else "default")
    out = write_result(args.out, f"heads-{label}-{torch.device(args.device).type}.json", result)
    print(f"{result['model']} on {result['machine']['device']}")
    print(table(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
