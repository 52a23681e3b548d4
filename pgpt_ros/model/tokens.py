"""The special tokens, the prompt and the answer format: the one place that spells them.

Everything that turns a command into token ids or an answer into ids (training collation, the
reference decoding loop, the runtime's faster loop, the text-coordinate baseline) goes through these
functions, so the format cannot drift between training and inference (LISA computes its `[SEG]`
index in four scripts; this module is the cure, in the manner of LLaVA's ``constants.py``).

Answer format, one entry per target object, joined by ``", "``::

    perception head:   "red circle <vis>, blue square <vis>"
    text_coords head:  "red circle [0.100,0.200,0.300,0.400], blue square [...]"
    no target:         "not found"

Perception answers are encoded piece by piece (phrase text, then the ``<vis>`` id) rather than by
tokenising the joined string, so a byte-level BPE never spends a token on the space before ``<vis>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IMAGE_TOKEN = "<image>"
VIS_TOKEN = "<vis>"


@dataclass(frozen=True)
class ChatFormat:
    """How one LLM family frames a one-turn question about an image, and its tokenizer's special
    tokens: a checkpoint of that family sees the prompt it was tuned on, and the project's tiny
    models of that family are built with the same tokens (``pgpt_ros.model.tokenizer``).

    Attributes:
        prompt_template (str): holds ``<image>`` once and a ``{command}`` field.
        eos, pad (str): end of the answer; padding.
        bos, unk (str | None): start of text and unknown token, where the family has them.
        extra (tuple[str, ...]): further special tokens of the template (ChatML's turn markers).
    """

    prompt_template: str
    eos: str
    pad: str
    bos: str | None = None
    unk: str | None = None
    extra: tuple[str, ...] = ()

    @property
    def specials(self) -> list[str]:
        """Every special token, in the order a new tokenizer gives them ids."""
        named = [self.pad, self.bos, self.eos, self.unk, *self.extra]
        return list(dict.fromkeys(t for t in named if t is not None))


# LLaVA-1.5 (Vicuna / Llama): "USER: <image>\n... ASSISTANT:", Llama's tokens.
LLAVA_1_5 = ChatFormat(
    "USER: <image>\n{command} ASSISTANT:", eos="</s>", pad="<pad>", bos="<s>", unk="<unk>"
)
# ChatML, as LLaVA-Interleave's Qwen checkpoints render a user turn with an image; Qwen has no
# BOS and ends an assistant turn with <|im_end|>.
CHATML = ChatFormat(
    "<|im_start|>user\n<image>\n{command}<|im_end|>\n<|im_start|>assistant\n",
    eos="<|im_end|>",
    pad="<|endoftext|>",
    extra=("<|im_start|>",),
)
# The family of a LLaVA checkpoint's language model (its text config's ``model_type``).
CHAT_FORMATS = {"llama": LLAVA_1_5, "qwen2": CHATML}
DEFAULT_PROMPT_TEMPLATE = LLAVA_1_5.prompt_template
NOT_FOUND = "not found"


def chat_format(text_model_type: str) -> ChatFormat:
    """The chat format of a language model family; ValueError names the known ones."""
    if text_model_type not in CHAT_FORMATS:
        raise ValueError(
            f"no chat format known for language model type {text_model_type!r} (known: "
            f"{sorted(CHAT_FORMATS)}); give the model a prompt_template explicitly"
        )
    return CHAT_FORMATS[text_model_type]


SEPARATOR = ","


def split_prompt(template: str, command: str) -> tuple[str, str]:
    """Splits the filled template around the image placeholder: (text before, text after)."""
    if template.count(IMAGE_TOKEN) != 1 or "{command}" not in template:
        raise ValueError(
            f"prompt template must hold exactly one {IMAGE_TOKEN} and a {{command}} field, "
            f"got {template!r}"
        )
    before, after = template.split(IMAGE_TOKEN)
    return before.format(command=command), after.format(command=command)


def encode_prompt(
    tokenizer, template: str, command: str, image_token_id: int, num_image_tokens: int
) -> list[int]:
    """Token ids of the prompt, with the image placeholder expanded to one id per image feature.

    The first piece is encoded with the tokenizer's special tokens (a Llama tokenizer adds BOS),
    the rest without. A ``<vis>`` written in the command stays one token: its input embedding is
    replaced by the box encoder's embedding of a box the caller provides ("what is at <vis>?").
    An ``<image>`` typed in the command is removed: the image features fill exactly N slots.
    """
    before, after = split_prompt(template, command.replace(IMAGE_TOKEN, ""))
    ids = tokenizer(before, add_special_tokens=True)["input_ids"]
    ids += [image_token_id] * num_image_tokens
    ids += tokenizer(after, add_special_tokens=False)["input_ids"]
    return ids


def _encode_text(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def format_box(box: Sequence[float]) -> str:
    """A normalised xyxy box as the baseline writes it: ``[0.123,0.456,0.789,0.912]``."""
    return "[" + ",".join(f"{float(v):.3f}" for v in box) + "]"


def answer_text(phrases: Sequence[str], boxes: np.ndarray | None = None) -> str:
    """The human-readable answer: ``"red circle <vis>, ..."``, or text boxes when given."""
    if len(phrases) == 0:
        return NOT_FOUND
    marks = [VIS_TOKEN] * len(phrases) if boxes is None else [format_box(b) for b in boxes]
    return f"{SEPARATOR} ".join(f"{p} {m}" for p, m in zip(phrases, marks, strict=True))


def encode_answer(
    tokenizer,
    phrases: Sequence[str],
    vis_token_id: int,
    eos_token_id: int,
    boxes: np.ndarray | None = None,
) -> list[int]:
    """Token ids of the answer, ending with EOS.

    Arguments:
        phrases (list[str]): one phrase per target, in answer order; empty means "not found".
        boxes (np.ndarray | None): Nx4 normalised xyxy. Given, the answer is the text-coordinate
            baseline's; None, each phrase is followed by one ``<vis>`` id.
    """
    if len(phrases) == 0 or boxes is not None:
        return _encode_text(tokenizer, " " + answer_text(phrases, boxes)) + [eos_token_id]
    ids: list[int] = []
    for i, phrase in enumerate(phrases):
        ids += phrase_ids(tokenizer, phrase, i)
        ids.append(vis_token_id)
    return ids + [eos_token_id]


def phrase_ids(tokenizer, phrase: str, index: int) -> list[int]:
    """Token ids of the ``index``-th phrase of a perception answer, separator included (the
    answer grammar walks exactly these)."""
    return _encode_text(tokenizer, (SEPARATOR if index else "") + " " + phrase)


def not_found_ids(tokenizer) -> list[int]:
    """Token ids of the answer with no target, EOS excluded."""
    return _encode_text(tokenizer, " " + NOT_FOUND)


def clean_phrase(text: str) -> str:
    """The phrase part of the answer text that precedes a ``<vis>``: separators and spaces removed."""
    return text.strip().lstrip(SEPARATOR).strip()


_NUMBER = r"\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*"
_BOX_PATTERN = re.compile(r"\[" + ",".join([_NUMBER] * 4) + r"\]")


def parse_text_boxes(text: str) -> list[tuple[str, np.ndarray]]:
    """Parses the baseline's answer into (phrase, normalised xyxy box) pairs; never raises.

    Every well-formed ``[x1,y1,x2,y2]`` counts; its phrase is the text since the previous box.
    Values are clipped to [0, 1] and each box's corners are ordered. A box with a non-finite value
    is dropped, and text without a well-formed box (truncated, garbled) yields no detection.
    """
    results = []
    start = 0
    for match in _BOX_PATTERN.finditer(text):
        phrase = clean_phrase(text[start : match.start()])
        start = match.end()
        values = np.array([float(v) for v in match.groups()], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            continue
        values = np.clip(values, 0.0, 1.0)
        x1, x2 = sorted(values[[0, 2]])
        y1, y2 = sorted(values[[1, 3]])
        results.append((phrase, np.array([x1, y1, x2, y2], dtype=np.float32)))
    return results
