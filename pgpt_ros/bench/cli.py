"""``pgpt-bench {heads,llm,train,node,spatial,voice,voice-latency} [options]``: dispatches to one
benchmark, imported only when asked for (each pulls in its own heavy dependencies); ``pgpt-bench
heads --help`` lists its options. Every benchmark prints a table and writes its JSON under
``--out DIR``."""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "heads": ("pgpt_ros.bench.heads", "latency of the <vis> heads per backend, precision, batch"),
    "llm": ("pgpt_ros.bench.llm", "answer latency: fast path vs transformers generate vs floor"),
    "train": ("pgpt_ros.bench.train", "one LoRA training step: time, tokens/s, MFU, peak memory"),
    "node": (
        "pgpt_ros.ros.node_bench",
        "the node under floods and a soak: answers, latency, memory",
    ),
    "spatial": (
        "pgpt_ros.ros.spatial_bench",
        "3D step latency per detection, 3D error, standing rate",
    ),
    "voice": ("pgpt_ros.bench.voice", "speech recognition: word errors, real-time factor"),
    "voice-latency": (
        "pgpt_ros.ros.voice_latency_bench",
        "end of speech -> detections, real nodes",
    ),
}


def usage() -> str:
    lines = [f"usage: pgpt-bench {{{','.join(SUBCOMMANDS)}}} [options]", ""]
    lines += [f"  {name:<13} {help_text}" for name, (_, help_text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] not in SUBCOMMANDS:
        print(f"pgpt-bench: unknown benchmark {argv[0]!r}\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
