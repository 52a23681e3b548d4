"""``pgpt-bench llm``: how fast a command is answered, against plain transformers and the floor.

    pgpt-bench llm --out docs/bench --preset tiny                              # CPU, ~1 min
    pgpt-bench llm --out DIR --preset llava-1.5-7b --device cuda --dtype float16   # a GPU
    pgpt-bench llm --out DIR --preset llava-1.5-7b --floor-only                # the floor, anywhere
    pgpt-bench llm --out DIR --preset llava-interleave-qwen-0.5b --device cuda  # the Jetson-sized one
    (``python -m pgpt_ros.bench.llm ...`` runs the same)

Random weights; every answer is forced (a logits processor picks the next token, leaving the
model's own compute untouched), so every path decodes exactly the same number of tokens:

1. this project's fast path (``Perceiver.answer``: static KV cache, CUDA graphs on a GPU, image
   prefix reused on a cached frame, ``<vis>`` decoded by the torch heads);
2. plain transformers ``generate`` answering one object with ``<vis>`` (5 tokens: 3 words,
   ``<vis>``, EOS), the ``<vis>`` state then decoded by the same heads;
3. plain transformers ``generate`` answering in Shikra style (coordinates as 25 text tokens);
4. the physical floor on this machine (``pgpt_ros.bench.floor``).

Writes ``OUT/llm-<preset>-<device>.json`` and prints a table. ``--floor-only --ceilings GBPS
TFLOPS --machine NAME`` computes the floor of a machine from its data sheet instead (the Jetson
estimates of docs/performance.md).
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import LogitsProcessorList

from pgpt_ros.bench.common import Timer, machine_description, synchronize, write_result
from pgpt_ros.bench.floor import Shape, floor, measure_machine
from pgpt_ros.model import PerceptionGPT, build_model, preset_config
from pgpt_ros.model.builder import build_perception_gpt
from pgpt_ros.model.tokenizer import build_tiny_tokenizer
from pgpt_ros.model.tokens import chat_format
from pgpt_ros.runtime import AnswerPolicy, Perceiver
from pgpt_ros.runtime.decoder import bucket
from pgpt_ros.runtime.loading import DTYPES

COMMAND = "find the red mug next to the laptop on the table"
OBJECT_WORDS = 3  # "the red mug": the words of a one-object answer before its <vis>
SHIKRA_TOKENS = 25  # a Shikra-style one-box answer written as text, EOS included
DECODE_TOKENS = 32  # extra tokens generated to measure the per-token decode time
IMAGE_HW = (480, 640)
PRESETS = ("tiny", "tiny-qwen", "shapes", "llava-1.5-7b", "llava-interleave-qwen-0.5b")


def build_bench_model(
    preset: str, device: str, dtype: torch.dtype, text_layers: int | None
) -> PerceptionGPT:
    """A model of the preset's shape with random weights, built directly on ``device`` in
    ``dtype`` (seconds for 7B; the meta device counts parameters without allocating them)."""
    torch.manual_seed(0)
    overrides = {} if text_layers is None else {"text_layers": text_layers}
    config = preset_config(preset, **overrides)
    if config.vis_token_id < 0:  # a tiny preset: its own tokenizer fixes the token ids
        return build_model(config).to(device=device, dtype=dtype)
    # The project's small tokenizer with the family's special tokens: its ids fit in the
    # checkpoint's vocabulary and the prompt has the family's form; only lengths matter here.
    chat = chat_format(config.backbone["text_config"]["model_type"])
    tokenizer = build_tiny_tokenizer(chat=chat)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return build_perception_gpt(config, tokenizer=tokenizer).eval()
    finally:
        torch.set_default_dtype(previous)


def forced(model: PerceptionGPT, reply: list[int]) -> Callable:
    """A logits processor (ours and transformers' signature) that answers ``reply`` greedily.

    It overwrites every logit, so random fp16 weights that overflow to inf or NaN cannot change
    the answer's length; the model's logits are still computed in full.
    """
    prompt_len = len(model.prompt_ids(COMMAND))
    eos = model.config.eos_token_id

    def force(ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        step = ids.shape[1] - prompt_len
        out = torch.full_like(logits, -1e9)
        out[:, reply[step] if step < len(reply) else eos] = 0.0
        return out

    return force


def text_reply(model: PerceptionGPT, length: int) -> list[int]:
    """``length`` word tokens, then EOS (the answer counts ``length + 1`` tokens)."""
    words = model.require_tokenizer()(" the red mug is at", add_special_tokens=False)["input_ids"]
    return [words[i % len(words)] for i in range(length)] + [model.config.eos_token_id]


# ------------------------------------------------------------------------------- the paths
def bench_fast_path(
    model: PerceptionGPT, image: np.ndarray, timer: Timer, compile_decode: bool
) -> dict[str, float]:
    """(1): ``Perceiver.answer`` on a new frame (a fresh image_id each call) and a cached one.

    ``first_command_ms`` is warm-up plus the first call: CUDA graph capture (and compilation)
    included, as a node pays it at start.
    """
    perceiver = Perceiver(
        model, policy=AnswerPolicy(max_new_tokens=DECODE_TOKENS + 1), compile_decode=compile_decode
    )
    device = model.device
    vis, eos = model.config.vis_token_id, model.config.eos_token_id
    one_object = forced(model, text_reply(model, OBJECT_WORDS)[:-1] + [vis, eos])
    first_only = forced(model, [eos])
    long_text = forced(model, text_reply(model, DECODE_TOKENS))
    frame_ids = iter(range(1 << 30))

    def run(force: Callable, new_frame: bool, tokens: int) -> None:
        perceiver.set_image(image, next(frame_ids) if new_frame else "cached")
        perceiver.answer(COMMAND, policy=AnswerPolicy(max_new_tokens=tokens),
                         logits_processor=force)  # fmt: skip

    timings = {}
    start = time.perf_counter()
    perceiver.warmup()  # graph capture (and compilation): what a node does at start
    run(long_text, True, DECODE_TOKENS + 1)
    synchronize(device)
    timings["first_command_ms"] = 1000 * (time.perf_counter() - start)
    timings["vision_prefill_ms"] = timer(lambda: run(first_only, True, 1))
    run(first_only, False, 1)  # fills the cache for "cached"
    first = timer(lambda: run(first_only, False, 1))
    timings["command_prefill_ms"] = first
    many = timer(lambda: run(long_text, False, DECODE_TOKENS + 1))
    timings["decode_ms_per_token"] = (many - first) / DECODE_TOKENS
    timings["one_object_new_frame_ms"] = timer(lambda: run(one_object, True, 8))
    timings["one_object_cached_frame_ms"] = timer(lambda: run(one_object, False, 8))
    return timings


def bench_transformers(model: PerceptionGPT, image: np.ndarray, timer: Timer) -> dict[str, float]:
    """(2) and (3): plain ``LlavaForConditionalGeneration.generate`` (dynamic cache)."""
    device = model.device
    heads = Perceiver(model).heads  # the torch heads
    cfg = model.config
    ids = torch.tensor([model.prompt_ids(COMMAND)], device=device)
    vis_step = OBJECT_WORDS  # the generation step whose state predicts <vis>

    # Generous to the baseline: the heads' image features are computed once, outside the timing.
    image_feats = model.encode_image(model.preprocess([image])[0])

    def generate(reply: list[int], states: bool = False):
        pixel_values = model.preprocess([image])[0]
        out = model.backbone.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            pixel_values=pixel_values,
            max_new_tokens=len(reply),
            do_sample=False,
            logits_processor=LogitsProcessorList([forced(model, reply)]),
            eos_token_id=cfg.eos_token_id,
            pad_token_id=cfg.pad_token_id,
            output_hidden_states=states,
            return_dict_in_generate=True,
        )
        if states:  # the one-object answer: decode the state that predicted <vis>
            state = out.hidden_states[vis_step][-1][:, -1]
            heads.decode(state, image_feats, pixel_values)
        return out

    one_object = text_reply(model, OBJECT_WORDS)[:-1] + [cfg.vis_token_id, cfg.eos_token_id]
    first = timer(lambda: generate([cfg.eos_token_id]))
    many = timer(lambda: generate(text_reply(model, DECODE_TOKENS)))
    return {
        "vision_prefill_ms": first,
        "decode_ms_per_token": (many - first) / DECODE_TOKENS,
        "one_object_ms": timer(lambda: generate(one_object, True)),
        "shikra_25_tokens_ms": timer(lambda: generate(text_reply(model, SHIKRA_TOKENS - 1))),
    }


# ------------------------------------------------------------------------------------ report
def table(result: dict) -> str:
    fast, hf, low = result.get("fast_path"), result.get("transformers"), result["floor"]
    rows = [
        ("vision + prefill (new frame)", "vision_prefill_ms", "vision_prefill_ms"),
        ("command prefill (cached frame)", "command_prefill_ms", None),
        ("decode, per token", "decode_ms_per_token", "decode_ms_per_token"),
        ("one-object command, new frame", "one_object_new_frame_ms", "one_object_ms"),
        ("one-object command, cached frame", "one_object_cached_frame_ms", None),
    ]
    lines = [f"{'ms':34} {'fast path':>10} {'generate':>10} {'floor':>10}"]
    for label, key, hf_key in rows:
        cells = [fast.get(key) if fast else None, hf.get(hf_key) if hf and hf_key else None]
        cells.append(low.get(key))
        text = [f"{c:10.2f}" if c is not None else f"{'-':>10}" for c in cells]
        lines.append(f"{label:34} " + " ".join(text))
    if hf:
        lines.append(f"{'Shikra-style answer (25 tokens)':34} {'-':>10} "
                     f"{hf['shikra_25_tokens_ms']:10.2f} {'-':>10}")  # fmt: skip
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pgpt-bench llm", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the JSON")
    parser.add_argument("--preset", choices=PRESETS, default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                        help="default: float16 on CUDA, float32 on the CPU")  # fmt: skip
    parser.add_argument("--text-layers", type=int, default=None,
                        help="fewer LM layers (a CPU-sized run of the 7B shape)")  # fmt: skip
    parser.add_argument("--floor-only", action="store_true",
                        help="count parameters on the meta device; measure only the machine")  # fmt: skip
    parser.add_argument("--ceilings", nargs=2, type=float, metavar=("GBPS", "TFLOPS"),
                        help="with --floor-only: copy bandwidth and matmul rate of another "
                        "machine (e.g. a data sheet's) instead of measuring this one")  # fmt: skip
    parser.add_argument("--machine", default="",
                        help="name of the machine --ceilings describe (in the file name)")  # fmt: skip
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the one-token step (minutes on the first command)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--statistic", choices=("median", "min"), default="median",
                        help="min on a machine others share (their load inflates medians)")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    args = parser.parse_args(argv)
    if args.ceilings and not args.floor_only:
        parser.error("--ceilings describe another machine: use them with --floor-only")
    return args


def measure(args: argparse.Namespace) -> dict:
    """The benchmark's result for parsed ``args`` (see ``parse_args``), without writing it."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    dtype = DTYPES[args.dtype or ("float16" if device.type == "cuda" else "float32")]
    if device.type == "cpu" and dtype == torch.float16 and not args.floor_only:
        raise SystemExit("float16 needs a GPU; use float32 or bfloat16 on the CPU")
    build_device = "meta" if args.floor_only else args.device
    model = build_bench_model(args.preset, build_device, dtype, args.text_layers)
    shape = Shape.of(model, dtype, COMMAND)
    answer_tokens = OBJECT_WORDS + 2
    result: dict = {
        "preset": args.preset,
        "text_layers": shape.layers,
        "dtype": str(dtype).removeprefix("torch."),
        "compiled_decode_step": args.compile,
        "statistic": f"{args.statistic} of {args.repeats} after {args.warmup} warm-up calls",
        "machine": machine_description(device),
        "tokens": {
            "prompt_prefix": shape.prefix_tokens,
            "prompt_command": shape.command_tokens,
            "command_prefill_bucket": bucket(shape.command_tokens),
            "one_object_answer": answer_tokens,
            "shikra_answer": SHIKRA_TOKENS,
        },
        "shape": shape.__dict__,
    }
    if args.ceilings:
        bandwidth, rate = args.ceilings
        result["machine"] = {"device": args.machine or "given ceilings", "ceilings": "given"}
        result["machine_ceilings"] = {"copy_bandwidth_GBps": bandwidth, "matmul_TFLOPs": rate}
    else:
        result["machine_ceilings"] = measure_machine(device, dtype)
    result["floor"] = floor(shape, result["machine_ceilings"], answer_tokens)
    if not args.floor_only:
        image = np.random.default_rng(0).integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8)
        timer = Timer(device, args.repeats, args.warmup, args.statistic)
        result["fast_path"] = bench_fast_path(model, image, timer, args.compile)
        result["transformers"] = bench_transformers(model, image, timer)
        fast, hf = result["fast_path"], result["transformers"]
        result["ratios"] = {
            "cached_command_over_floor": fast["one_object_cached_frame_ms"]
            / result["floor"]["one_object_cached_frame_ms"],
            "new_command_over_floor": fast["one_object_new_frame_ms"]
            / result["floor"]["one_object_new_frame_ms"],
            "generate_one_object_over_cached": hf["one_object_ms"]
            / fast["one_object_cached_frame_ms"],
            "shikra_over_cached": hf["shikra_25_tokens_ms"] / fast["one_object_cached_frame_ms"],
        }
    return result


def result_name(args: argparse.Namespace) -> str:
    """``llm-<preset>[-<n>layers]-<cpu|cuda|floor>[-compiled].json``."""
    layers = "" if args.text_layers is None else f"-{args.text_layers}layers"
    kind = "floor" if args.floor_only else torch.device(args.device).type
    kind += "-compiled" if args.compile else ""
    if args.machine:
        kind += "-" + re.sub(r"[^a-z0-9]+", "-", args.machine.lower()).strip("-")
    return f"llm-{args.preset}{layers}-{kind}.json"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = measure(args)
    out = write_result(args.out, result_name(args), result)
    print(f"{args.preset} ({result['text_layers']} LM layers), {result['dtype']}, "
          f"{result['machine']['device']}")  # fmt: skip
    if "fast_path" in result:
        print(table(result))
        print({k: round(v, 2) for k, v in result["ratios"].items()})
    else:
        print({k: round(v, 2) for k, v in result["floor"].items()})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
