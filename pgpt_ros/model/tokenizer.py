"""The tokenizer of the tiny models: a byte-level BPE the project trains offline with `tokenizers`.

A user's LLaVA checkpoint brings its own tokenizer; the tiny models need one that exists without
downloading anything. Byte-level BPE encodes any text (unknown words fall back to bytes), and the
built-in corpus makes the ShapesRef vocabulary single tokens so short answers stay short.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from pgpt_ros.data.shapesref import command_words
from pgpt_ros.model.tokens import (
    DEFAULT_PROMPT_TEMPLATE,
    IMAGE_TOKEN,
    LLAVA_1_5,
    NOT_FOUND,
    VIS_TOKEN,
    ChatFormat,
)

COLOURS = [
    "red",
    "green",
    "blue",
    "yellow",
    "purple",
    "orange",
    "white",
    "black",
    "gray",
    "grey",
    "pink",
    "cyan",
    "brown",
]
SHAPES = [
    "circle",
    "square",
    "triangle",
    "star",
    "diamond",
    "ellipse",
    "rectangle",
    "hexagon",
    "cross",
]
WORDS = [
    "the",
    "a",
    "an",
    "all",
    "every",
    "each",
    "left",
    "right",
    "of",
    "above",
    "below",
    "under",
    "next",
    "to",
    "near",
    "largest",
    "smallest",
    "biggest",
    "leftmost",
    "rightmost",
    "topmost",
    "bottommost",
    "bottom",
    "top",
    "middle",
    "centre",
    "center",
    "find",
    "shape",
    "shapes",
    "object",
    "objects",
    "small",
    "big",
    "large",
    "medium",
    "none",
    "not",
    "found",
    "where",
    "is",
    "are",
    "and",
    "what",
    "at",
    "which",
    "one",
    "two",
    "three",
    "show",
    "me",
    "locate",
    "point",
    "segment",
    "this",
    "that",
    "it",
    "in",
    "on",
    "with",
    "there",
]


def _corpus() -> list[str]:
    """Sentences that cover the prompt template, the answers and the ShapesRef vocabulary."""
    prompt = DEFAULT_PROMPT_TEMPLATE.replace(IMAGE_TOKEN, "")
    lines = [prompt.format(command=""), NOT_FOUND, "0.123,0.456,0.789,0.912 [0.5,0.5,1.0,1.0]"]
    for colour in COLOURS:
        for shape in SHAPES:
            lines.append(f"find the {colour} {shape} {colour} {shape}s, the {colour} {shape}")
    lines.append(" ".join(WORDS))
    # Every word a ShapesRef command can hold (spoken wrappers, unknown things): one token each,
    # so "can you find ... please" costs the model three tokens, not a dozen byte pieces.
    lines.append(" ".join(command_words()))
    lines.append(" ".join(w.capitalize() for w in WORDS + COLOURS + SHAPES))
    return lines * 4


def build_tiny_tokenizer(
    vocab_size: int = 768, *, with_vis: bool = True, chat: ChatFormat = LLAVA_1_5
) -> PreTrainedTokenizerFast:
    """Trains the byte-level BPE and wraps it for transformers, special tokens included.

    ``chat`` names the family whose special tokens and prompt the tokenizer carries (LLaVA-1.5's
    ``<s>``/``</s>`` or ChatML's ``<|im_start|>``/``<|im_end|>``), so a tiny model of a family
    meets the same prompt and end-of-answer token as a checkpoint of it. ``<image>`` and ``<vis>``
    are added as special tokens so no merge ever splits them; ``with_vis=False`` leaves ``<vis>``
    out, as in a plain LLaVA checkpoint (used by tests).
    """
    bpe = Tokenizer(models.BPE(unk_token=chat.unk))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=chat.specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    prompt = chat.prompt_template.replace(IMAGE_TOKEN, "").format(command="")
    bpe.train_from_iterator(_corpus() + [prompt] * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token=chat.pad,
        bos_token=chat.bos,
        eos_token=chat.eos,
        unk_token=chat.unk,
        additional_special_tokens=list(chat.extra),
    )
    if with_vis:
        add_perception_tokens(tokenizer)
    else:
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    return tokenizer


def add_perception_tokens(tokenizer: PreTrainedTokenizerBase) -> None:
    """Adds ``<image>`` (if missing) and ``<vis>`` as special tokens; returns nothing, ids via lookup."""
    missing = [t for t in (IMAGE_TOKEN, VIS_TOKEN) if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
