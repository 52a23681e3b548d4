"""Greedy answers: the decoding loop every decoder shares, the reference decoder, answer text.

The loop (``greedy_decode``) is written once; what differs between decoders is only how a step
advances the KV cache and which backend runs the heads. The reference decoder here uses
transformers' ``DynamicCache`` and the model's own torch heads: simple, and what the served path
(``pgpt_ros.runtime``, static cache, CUDA graphs, exported heads) is tested against.

Answers are in the model's normalised frame (boxes xyxy over the square input, mask logits over
it); ``pgpt_ros.model.preprocess.FrameTransform`` maps them to a frame's pixels.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import DynamicCache

from pgpt_ros.model import tokens
from pgpt_ros.model.grammar import answer_grammar
from pgpt_ros.model.perception_gpt import PerceptionGPT

LogitsProcessor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Detection:
    """One located object, in the model's normalised frame.

    Attributes:
        phrase (str): the answer words before its ``<vis>`` ("red circle").
        box (np.ndarray): (4,) float32 normalised xyxy over the model input, x2 >= x1, y2 >= y1.
        mask_logits (np.ndarray | None): (mask_size, mask_size) float32 over the model input;
            None for the text-coordinate baseline.
        score (float): in [0, 1]; P(``<vis>``) at its step times the predicted IoU.
    """

    phrase: str
    box: np.ndarray
    mask_logits: np.ndarray | None
    score: float


@dataclass
class Answer:
    """The model's reply to one command: its text (``<vis>`` shown), detections, tokens generated,
    and whether the answer is whole (False: ``max_new_tokens`` cut it before it ended; its
    detections must not be served, ``pgpt_ros.policy.IncompleteAnswer``)."""

    text: str
    detections: list[Detection]
    num_tokens: int
    complete: bool = True


@dataclass
class Generation:
    """What a decoder produced.

    ``vis_states``, ``boxes``, ``mask_logits``, ``ious`` and ``vis_probs`` have one row per
    emitted ``<vis>``; ``token_ids`` are the generated ids without EOS. ``complete``: the answer
    ended (EOS, or ``max_objects`` reached after a ``<vis>``) and is well-formed.
    """

    token_ids: list[int]
    num_tokens: int
    vis_states: torch.Tensor
    boxes: torch.Tensor
    mask_logits: torch.Tensor
    ious: torch.Tensor
    vis_probs: torch.Tensor
    phrases: list[str] = field(default_factory=list)
    complete: bool = True


def greedy_decode(
    model: PerceptionGPT,
    hidden: torch.Tensor,
    *,
    step: Callable[[torch.Tensor], torch.Tensor],
    decode_vis: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    vis_embedding: Callable[[torch.Tensor], torch.Tensor],
    prompt_ids: list[int],
    max_new_tokens: int = 32,
    max_objects: int | None = None,
    logits_processor: LogitsProcessor | None = None,
    constrain: bool = True,
) -> Generation:
    """The greedy answer loop every decoder shares; only the cache and the heads differ.

    When the model emits ``<vis>``, ``decode_vis`` decodes the state that predicted it, and the
    next step is fed ``vis_embedding(box)`` (``embed(<vis>) + box_encoder(box)``) so later tokens
    see what was found. Stops at EOS, after ``max_new_tokens`` tokens or ``max_objects`` boxes.
    With ``constrain`` (perception head), each step's argmax is taken among the tokens the
    answer grammar allows (``pgpt_ros.model.grammar``); a ``<vis>``'s probability, part of its
    score, is read before that mask.

    Arguments:
        hidden (torch.Tensor): (1, d) the last state after the prompt.
        step: (1, 1, d) next input embedding -> (1, d) state, advancing the caller's KV cache.
        decode_vis: (1, d) state -> box (1, 4), mask logits (1, M, M), predicted IoU (1,).
        vis_embedding: box (1, 4) -> (1, d) input embedding of the emitted ``<vis>``.
        prompt_ids (list[int]): the prompt's ids, for ``logits_processor``.
        logits_processor: ``f(ids (1, t), logits (1, V)) -> logits``, as transformers' logits
            processors; tests use it to force an answer. Applied before the grammar.
        constrain (bool): hold the answer to the grammar (False: the model's raw argmax).
    """
    cfg = model.config
    tokenizer = model.require_tokenizer()
    perception = cfg.head == "perception"
    grammar = answer_grammar(model) if constrain and perception else None
    ended = False
    generated: list[int] = []
    rows: list[tuple[torch.Tensor, ...]] = []
    phrases: list[str] = []
    segment_start = 0
    num_tokens = 0
    for index in range(max_new_tokens):
        logits = model.backbone.lm_head(hidden).float()
        if logits_processor is not None:
            ids = torch.tensor([prompt_ids + generated], device=hidden.device)
            logits = logits_processor(ids, logits)
        chosen = logits if grammar is None else grammar.constrain(generated, logits)
        token = int(chosen[0].argmax())
        num_tokens += 1
        if token == cfg.eos_token_id:
            ended = True
            break
        generated.append(token)
        if perception and token == cfg.vis_token_id:
            box, mask, iou = decode_vis(hidden)
            prob = torch.softmax(logits[0], dim=-1)[token]
            # clone: a captured CUDA graph overwrites its output state on the next replay
            rows.append((hidden[0].clone(), box[0], mask[0], iou[0], prob))
            segment = tokenizer.decode(generated[segment_start:-1], skip_special_tokens=True)
            phrases.append(tokens.clean_phrase(segment))
            segment_start = len(generated)
            next_embed = vis_embedding(box)
            if max_objects is not None and len(rows) >= max_objects:
                ended = True
                break
        else:
            next_embed = model.embed_tokens(torch.tensor([token], device=hidden.device))
        if index + 1 < max_new_tokens:
            hidden = step(next_embed[:, None])
    if rows:
        states, boxes, masks, ious, probs = (torch.stack(c) for c in zip(*rows, strict=True))
    else:
        m = cfg.mask_size
        states, boxes = hidden.new_zeros(0, cfg.hidden_size), hidden.new_zeros(0, 4)
        masks, ious, probs = hidden.new_zeros(0, m, m), hidden.new_zeros(0), hidden.new_zeros(0)
    return Generation(
        token_ids=generated,
        num_tokens=num_tokens,
        vis_states=states,
        boxes=boxes,
        mask_logits=masks,
        ious=ious,
        vis_probs=probs,
        phrases=phrases,
        complete=ended and (grammar is None or grammar.complete(generated)),
    )


def _lm_step(model: PerceptionGPT, embeds: torch.Tensor, cache: DynamicCache) -> torch.Tensor:
    """Runs (1, t, d) embeddings through the LM with the cache; returns the last state (1, d)."""
    return model.run_language_model(embeds, cache)[:, -1]


@torch.no_grad()
def generate(
    model: PerceptionGPT,
    pixel_values: torch.Tensor,
    command: str,
    *,
    prompt_boxes: torch.Tensor | None = None,
    max_new_tokens: int = 32,
    max_objects: int | None = None,
    logits_processor: LogitsProcessor | None = None,
    constrain: bool = True,
) -> Generation:
    """The reference decoder: a dynamic KV cache and the model's torch heads.

    Arguments:
        pixel_values (torch.Tensor): (1, 3, S, S) from ``model.preprocess``.
        prompt_boxes (torch.Tensor | None): (K, 4) boxes of ``<vis>`` tokens written in the
            command ("what is at <vis>?").
    """
    embeds, image_feats, ids = model.prompt_embeddings(pixel_values, command, prompt_boxes)
    cache = DynamicCache(config=model.backbone.config.text_config)
    return greedy_decode(
        model,
        _lm_step(model, embeds, cache),
        step=lambda next_embed: _lm_step(model, next_embed, cache),
        decode_vis=lambda hidden: model.decode_vis(hidden, image_feats, pixel_values),
        vis_embedding=model.vis_input_embedding,
        prompt_ids=ids,
        max_new_tokens=max_new_tokens,
        max_objects=max_objects,
        logits_processor=logits_processor,
        constrain=constrain,
    )


def answer_text(model: PerceptionGPT, token_ids: list[int]) -> str:
    """The generated ids as text: special tokens dropped except ``<vis>``, shown as " <vis>"."""
    tokenizer = model.require_tokenizer()
    segments: list[list[int]] = [[]]
    for token in token_ids:
        if token == model.config.vis_token_id:
            segments.append([])
        else:
            segments[-1].append(token)
    texts = [tokenizer.decode(s, skip_special_tokens=True).rstrip() for s in segments]
    return re.sub(r"\s+", " ", f" {tokens.VIS_TOKEN}".join(texts)).strip()


def to_answer(model: PerceptionGPT, gen: Generation, max_objects: int | None = None) -> Answer:
    """A decoded ``Generation`` as an ``Answer`` (scores = P(``<vis>``) x predicted IoU); every
    decoding loop (the reference, the runtime's) reads its generation through here. With the
    text-coordinate head, the answer's ``[x1,y1,x2,y2]`` texts are parsed (malformed text gives no
    detection) with score 1."""
    text = answer_text(model, gen.token_ids)
    if model.config.head == "text_coords":
        found = tokens.parse_text_boxes(text)[:max_objects]
        detections = [Detection(p, b, None, 1.0) for p, b in found]
        return Answer(text, detections, gen.num_tokens, gen.complete)
    scores = (gen.vis_probs * gen.ious).clamp(0, 1).float().cpu().numpy()
    boxes = gen.boxes.float().cpu().numpy()
    masks = gen.mask_logits.float().cpu().numpy()
    detections = [
        Detection(phrase, boxes[i], masks[i], float(scores[i]))
        for i, phrase in enumerate(gen.phrases)
    ]
    return Answer(text, detections, gen.num_tokens, gen.complete)


def answer(
    model: PerceptionGPT,
    image: np.ndarray,
    command: str,
    *,
    max_new_tokens: int = 32,
    max_objects: int | None = None,
    prompt_boxes: np.ndarray | None = None,
    logits_processor: LogitsProcessor | None = None,
    constrain: bool = True,
) -> Answer:
    """The reference answer to one command about one HxWx3 uint8 RGB image (model frame)."""
    pixel_values, _ = model.preprocess([image])
    boxes = None
    if prompt_boxes is not None:
        boxes = torch.as_tensor(prompt_boxes, dtype=model.dtype, device=model.device)
    gen = generate(
        model,
        pixel_values,
        command,
        prompt_boxes=boxes,
        max_new_tokens=max_new_tokens,
        max_objects=max_objects,
        logits_processor=logits_processor,
        constrain=constrain,
    )
    return to_answer(model, gen, max_objects)
