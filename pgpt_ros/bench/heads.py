"""``pgpt-bench heads``: latency of the ``<vis>`` heads per backend, precision and batch.

    pgpt-bench heads                                   # embedded default model (or tiny), CPU
    pgpt-bench heads --model runs/my_model --batches 1 4 8 --repeats 200
    pgpt-bench heads --config llava-7b-heads           # heads of LLaVA-1.5-7B's shapes
    pgpt-bench heads --device cuda --dtypes float32 float16   # a GPU: torch, ORT, TensorRT
    (``python -m pgpt_ros.bench.heads ...`` runs the same)

Times ``decode`` (box decoder -> mask decoder -> score head on K objects: what the decoding loop
calls per ``<vis>``) and ``encode_box`` separately, on random inputs, after warm-up; on CUDA every
call is synchronised. Backends that cannot run here are listed with the reason, not timed.
Writes ``docs/bench/heads-<config>-<device>.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from pgpt_ros.export.tensorrt_build import tensorrt_status
from pgpt_ros.model import PerceptionGPT, PerceptionGPTConfig, build_model
from pgpt_ros.model_zoo import DEFAULT_MODEL_DIR
from pgpt_ros.runtime.heads import (
    PRECISIONS,
    HeadBackend,
    random_head_inputs,
    select_head_backend,
)

OUT_DIR = Path("docs/bench")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
BACKENDS = ("torch", "onnxruntime", "tensorrt")


def llava_7b_heads_config() -> PerceptionGPTConfig:
    """Heads of LLaVA-1.5-7B's shapes (d 4096, 576 image tokens at 336 px / 14, 64 x 64 masks,
    head width 256) on a one-layer stand-in backbone: only the heads run in this bench, and the
    real 7B backbone would not fit a CPU machine's memory in float32."""
    return PerceptionGPTConfig.tiny(
        image_size=336,
        patch_size=14,
        vision_width=64,
        vision_layers=1,
        text_width=4096,
        text_layers=1,
        mask_size=64,
        head_width=256,
    )


CONFIGS = {"tiny": PerceptionGPTConfig.tiny, "llava-7b-heads": llava_7b_heads_config}


def load_model(model_dir: Path | None, config: str) -> tuple[PerceptionGPT, str]:
    """The model to time and where it came from (latency does not depend on trained weights)."""
    if model_dir is not None:
        return PerceptionGPT.from_pretrained(model_dir), str(model_dir)
    if config == "default" and (DEFAULT_MODEL_DIR / "pgpt_config.json").is_file():
        return PerceptionGPT.from_pretrained(DEFAULT_MODEL_DIR), "embedded default model"
    torch.manual_seed(0)
    name = "tiny" if config == "default" else config
    note = " (no embedded default model yet)" if config == "default" else ""
    return build_model(CONFIGS[name]()), f"untrained {name} model{note}"


def time_ms(fn, device: torch.device, repeats: int, warmup: int) -> list[float]:
    """Wall-clock milliseconds of ``fn()`` per call, synchronised on CUDA."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def time_backend(
    backend: HeadBackend, model: PerceptionGPT, batch: int, repeats: int, warmup: int
) -> tuple[list[float], list[float]]:
    """Per-call milliseconds of ``decode`` and of ``encode_box`` on K = ``batch`` random objects."""
    inputs, _ = random_head_inputs(model, batch)
    states, feats, pixels = (inputs[k] for k in ("vis_state", "image_feats", "pixel_values"))
    with torch.inference_mode():
        decode = time_ms(
            lambda: backend.decode(states, feats, pixels), model.device, repeats, warmup
        )
        encode = time_ms(lambda: backend.encode_box(inputs["boxes"]), model.device, repeats, warmup)
    return decode, encode


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(ordered),
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))],
        "min_ms": ordered[0],
    }


def machine_description(device: torch.device) -> dict[str, object]:
    if device.type == "cuda":
        return {"device": torch.cuda.get_device_name(device), "cuda": str(torch.version.cuda)}
    return {
        "device": f"CPU ({platform.machine()}, {torch.get_num_threads()} torch threads)",
        "cpu_count": os.cpu_count() or 0,
        # Other work on the machine inflates medians; the minimum is the least disturbed run.
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


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
    base, source = load_model(args.model, args.config)
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
    parser.add_argument("--model", type=Path, default=None, help="a saved model directory")
    parser.add_argument(
        "--config",
        choices=("default", *CONFIGS),
        default="default",
        help="without --model: the embedded default model (tiny until it exists), the tiny "
        "config, or heads of LLaVA-1.5-7B's shapes",
    )
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=sorted(DTYPES),
        default=None,
        help="model dtypes (default: float32 and float16 on CUDA, float32 on the CPU)",
    )
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--engine-dir", type=Path, default=Path("engines"))
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default docs/bench/)")
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
    label = "model" if args.model else args.config
    out = args.out or OUT_DIR / f"heads-{label}-{torch.device(args.device).type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['model']} on {result['machine']['device']}")
    print(table(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
