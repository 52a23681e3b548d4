"""PerceptionGPT (Pi et al., CVPR 2024, arXiv 2311.06612), written from the paper and DESIGN.md.

Data path::

    image -> preprocess (stretch, CLIP norm) -> vision tower -> projector -> image_feats (B, N, d)
    prompt ids with N image placeholders -> embeddings, placeholders replaced by image_feats
    -> causal LM -> the last-layer state that predicts each <vis> -> heads:
         box_decoder(state, image_feats) -> box;  mask_decoder(state, image_feats, box, pixels)
         -> mask logits;  score_head(state, box) -> predicted IoU (score = P(<vis>) x IoU)
    the emitted <vis> is fed back with input embedding  embed(<vis>) + box_encoder(box)

The backbone is transformers' ``LlavaForConditionalGeneration``; this class adds the heads, the
losses, a reference KV-cached greedy decoder and the directory contract (safetensors + JSON).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F
from accelerate import init_empty_weights
from torch import nn
from transformers import (
    AutoTokenizer,
    DynamicCache,
    LlavaForConditionalGeneration,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    SamModel,
)

from pgpt_ros.model import losses, tokens
from pgpt_ros.model.config import PerceptionGPTConfig
from pgpt_ros.model.heads import (
    BOX_DECODERS,
    BoxEncoder,
    PatchClassifier,
    PatchGeometry,
    QueryBoxDecoder,
    ScoreHead,
)
from pgpt_ros.model.image_position import ImagePosition
from pgpt_ros.model.mask_decoder import SamMaskDecoderAdapter, build_mask_decoder
from pgpt_ros.model.preprocess import preprocess_images
from pgpt_ros.model.vision_stem import ConvStem

CONFIG_NAME = "pgpt_config.json"
WEIGHTS_NAME = "model.safetensors"
ADAPTER_NAME = "adapter.safetensors"  # adapter-only save: trainable weights and heads
IGNORE_INDEX = -100
# LoRA on the language model's attention only: the CLIP tower also has q_proj/v_proj.
LORA_TARGET_MODULES = r".*language_model.*\.(q_proj|v_proj)"

LogitsProcessor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Detection:
    """One located object.

    Attributes:
        phrase (str): the answer words before its ``<vis>`` ("red circle").
        box (np.ndarray): (4,) float32 normalised xyxy over the full image, x2 >= x1, y2 >= y1.
        mask_logits (np.ndarray | None): (mask_size, mask_size) float32 over the full image;
            None for the text-coordinate baseline.
        score (float): in [0, 1]; P(``<vis>``) at its step times the predicted IoU.
    """

    phrase: str
    box: np.ndarray
    mask_logits: np.ndarray | None
    score: float


@dataclass
class Answer:
    """The model's reply to one command: its text (``<vis>`` shown), detections, tokens generated."""

    text: str
    detections: list[Detection]
    num_tokens: int


@dataclass
class ModelOutput:
    """Training output: the weighted total, each term, and the per-``<vis>`` head outputs."""

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    boxes: torch.Tensor | None = None
    mask_logits: torch.Tensor | None = None
    iou: torch.Tensor | None = None


@dataclass
class Generation:
    """What the reference decoder produced, for ``answer`` and for tests of the loop itself.

    ``vis_states``, ``boxes``, ``mask_logits``, ``ious`` and ``vis_probs`` have one row per
    emitted ``<vis>``; ``token_ids`` are the generated ids without EOS.
    """

    token_ids: list[int]
    num_tokens: int
    vis_states: torch.Tensor
    boxes: torch.Tensor
    mask_logits: torch.Tensor
    ious: torch.Tensor
    vis_probs: torch.Tensor
    phrases: list[str] = field(default_factory=list)


def gather_vis_states(
    hidden: torch.Tensor, labels: torch.Tensor, vis_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The last-layer states that predict each ``<vis>`` in the labels, in (batch, position) order.

    The state at position t predicts token t + 1, so a ``<vis>`` at t + 1 is represented by the
    state at t. Only answer positions count (prompt tokens carry IGNORE_INDEX labels).

    Arguments:
        hidden (torch.Tensor): (B, T, d) last-layer states after the final norm.
        labels (torch.Tensor): (B, T) target ids, IGNORE_INDEX outside the answer.
    Returns:
        states (K, d) and their batch indices (K,).
    """
    batch, position = (labels[:, 1:] == vis_token_id).nonzero(as_tuple=True)
    return hidden[batch, position], batch


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
) -> Generation:
    """The greedy answer loop every decoder shares; only the cache and the heads differ.

    When the model emits ``<vis>``, ``decode_vis`` decodes the state that predicted it, and the
    next step is fed ``vis_embedding(box)`` (``embed(<vis>) + box_encoder(box)``) so later tokens
    see what was found. Stops at EOS, after ``max_new_tokens`` tokens or ``max_objects`` boxes.

    Arguments:
        hidden (torch.Tensor): (1, d) the last state after the prompt.
        step: (1, 1, d) next input embedding -> (1, d) state, advancing the caller's KV cache.
        decode_vis: (1, d) state -> box (1, 4), mask logits (1, M, M), predicted IoU (1,).
        vis_embedding: box (1, 4) -> (1, d) input embedding of the emitted ``<vis>``.
        prompt_ids (list[int]): the prompt's ids, for ``logits_processor``.
        logits_processor: ``f(ids (1, t), logits (1, V)) -> logits``, as transformers' logits
            processors; tests use it to force an answer.
    """
    cfg = model.config
    tokenizer = model.require_tokenizer()
    perception = cfg.head == "perception"
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
        token = int(logits[0].argmax())
        num_tokens += 1
        if token == cfg.eos_token_id:
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
    )


class PerceptionGPT(nn.Module):
    """A LLaVA backbone plus the ``<vis>`` heads; see the module docstring for the data path.

    Arguments:
        config (PerceptionGPTConfig): the whole description; token ids must be filled in.
        backbone (LlavaForConditionalGeneration | None): built from ``config.backbone`` if None.
        tokenizer: a transformers tokenizer holding ``<image>`` and ``<vis>``; only generation
            and collation need it (None is fine for counting parameters).
    """

    def __init__(
        self,
        config: PerceptionGPTConfig,
        backbone: LlavaForConditionalGeneration | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.backbone = backbone or LlavaForConditionalGeneration(config.llava_config())
        if config.vision_stem == "conv":
            vision = config.backbone["vision_config"]
            embeddings = self.backbone.model.vision_tower.embeddings
            embeddings.patch_embedding = ConvStem(
                width=vision["hidden_size"], patch_size=vision["patch_size"]
            )
        d, w = config.hidden_size, config.head_width
        grid = config.image_size // config.backbone["vision_config"]["patch_size"]
        self.box_decoder: nn.Module | None = None
        self.box_encoder: BoxEncoder | None = None
        self.mask_decoder: nn.Module | None = None
        self.score_head: ScoreHead | None = None
        if config.head == "perception":
            self.box_decoder = BOX_DECODERS[config.box_decoder](hidden_size=d, width=w, grid=grid)
            self.box_encoder = BoxEncoder(hidden_size=d, width=w)
            self.mask_decoder = build_mask_decoder(
                config.mask_decoder,
                hidden_size=d,
                width=w,
                grid=grid,
                mask_size=config.mask_size,
                sam=config.sam,
            )
            self.score_head = ScoreHead(hidden_size=d, width=w)
        self.image_position: ImagePosition | None = None
        if config.image_position:
            self.image_position = ImagePosition(hidden_size=d, grid=grid)
        self.patch_classifier: PatchClassifier | None = None
        if config.patch_classes:
            self.patch_classifier = PatchClassifier(hidden_size=d, classes=config.patch_classes)
        self.patch_geometry: PatchGeometry | None = None
        if config.patch_geometry:
            self.patch_geometry = PatchGeometry(hidden_size=d)

    # ----------------------------------------------------------------------------- building blocks
    @property
    def device(self) -> torch.device:
        return self.backbone.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.backbone.lm_head.weight.dtype

    @property
    def language_model(self) -> nn.Module:
        """The decoder stack (embeddings, layers, final norm), without the LM head."""
        return self.backbone.model.language_model

    def require_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            raise RuntimeError("this model has no tokenizer; load it with from_pretrained(dir)")
        return self.tokenizer

    def preprocess(self, images: list[np.ndarray]) -> torch.Tensor:
        """HxWx3 uint8 RGB images -> pixel_values on the model's device and dtype (stretched)."""
        pixels = preprocess_images(images, self.config.image_size)
        return pixels.to(self.device, self.dtype)

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, N, d) projector outputs: the image tokens and the heads' keys."""
        out = self.backbone.model.get_image_features(pixel_values=pixel_values, return_dict=True)
        feats = torch.stack(list(out.pooler_output))
        return feats if self.image_position is None else self.image_position(feats)

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.backbone.get_input_embeddings()(input_ids)

    def vis_input_embedding(self, boxes: torch.Tensor) -> torch.Tensor:
        """(K, 4) boxes -> (K, d) input embeddings of ``<vis>`` tokens that carry those boxes."""
        vis = torch.full((boxes.shape[0],), self.config.vis_token_id, device=boxes.device)
        return self.embed_tokens(vis) + self.box_encoder(boxes.to(self.dtype))

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        image_feats: torch.Tensor,
        vis_boxes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Input embeddings: image placeholders replaced by ``image_feats`` (B, N, d) in order, and
        each ``<vis>`` (row-major over the batch) given its box from ``vis_boxes`` (K, 4)."""
        embeds = self.embed_tokens(input_ids)
        image_mask = (input_ids == self.config.image_token_id)[..., None]
        embeds = embeds.masked_scatter(image_mask, image_feats.to(embeds.dtype))
        if self.config.head == "perception":
            vis_mask = input_ids == self.config.vis_token_id
            count = int(vis_mask.sum())
            if count:
                if vis_boxes is None or len(vis_boxes) != count:
                    got = None if vis_boxes is None else len(vis_boxes)
                    raise ValueError(
                        f"{count} <vis> tokens in the input need {count} boxes, got {got}"
                    )
                embeds = embeds.clone()
                embeds[vis_mask] = self.vis_input_embedding(vis_boxes)
        return embeds

    def decode_vis(
        self, vis_state: torch.Tensor, image_feats: torch.Tensor, pixel_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All heads on (K, d) ``<vis>`` states with their images' (K, N, d) features and pixels.

        Returns boxes (K, 4), mask logits (K, M, M) and predicted IoU (K,).
        """
        boxes = self.box_decoder(vis_state, image_feats)
        masks = self.mask_decoder(vis_state, image_feats, boxes, pixel_values)
        return boxes, masks, self.score_head(vis_state, boxes)

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        vis_boxes: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced pass: last-layer states (B, T, d) after the final norm, and image_feats.

        ``attention_mask`` is (B, T) padding or, with ``position_ids``, a packed batch's
        (B, 1, T, T) additive mask (see ``Collator.pack``).
        """
        image_feats = self.encode_image(pixel_values)
        embeds = self.embed_inputs(input_ids, image_feats, vis_boxes)
        out = self.language_model(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids
        )
        return out.last_hidden_state, image_feats

    # ------------------------------------------------------------------------------------ training
    def forward(
        self, batch: dict[str, torch.Tensor], max_mask_objects: int | None = None
    ) -> ModelOutput:
        """Loss on a collated batch (see ``pgpt_ros.data.collate``).

        The ``<vis>`` tokens of the answer are fed the ground-truth boxes (teacher forcing), and the
        mask decoder is prompted with the ground-truth box for the same reason.

        ``max_mask_objects`` trains the mask decoder on that many randomly chosen objects of the
        batch (all when None): it runs per object at full mask resolution and cost as much as the
        whole LLM on the tiny model, while segmenting inside a given box needs few examples.
        ``mask_logits`` then has a row per chosen object, in batch order.
        """
        labels = batch["labels"]
        target_boxes = batch.get("target_boxes")
        hidden, image_feats = self.hidden_states(
            batch["input_ids"],
            batch["pixel_values"],
            batch.get("attention_mask"),
            target_boxes,
            batch.get("position_ids"),
        )
        # Logits only where a label is: most positions are image tokens, and the vocabulary
        # projection over all of them was a fifth of a tiny model's training step.
        supervised = labels[:, 1:] != IGNORE_INDEX
        logits = self.backbone.lm_head(hidden[:, :-1][supervised])
        lm = F.cross_entropy(logits.float(), labels[:, 1:][supervised])
        parts = {"lm": lm}
        out = ModelOutput(loss=lm, losses=parts)
        if self.config.head == "perception":
            states, index = gather_vis_states(hidden, labels, self.config.vis_token_id)
            zero = hidden.sum() * 0.0
            parts.update(l1=zero, giou=zero, bce=zero, dice=zero, iou=zero, heat=zero)
            if len(states):
                feats = image_feats[index]
                boxes = self.box_decoder(states, feats)
                chosen = torch.arange(len(states), device=states.device)
                if max_mask_objects is not None and len(states) > max_mask_objects:
                    chosen = torch.randperm(len(states))[:max_mask_objects].sort().values
                    chosen = chosen.to(states.device)
                masks = self.mask_decoder(
                    states[chosen],
                    feats[chosen],
                    target_boxes[chosen],
                    batch["pixel_values"][index[chosen]],
                )
                iou = self.score_head(states, boxes.detach())
                target_masks = batch["target_masks"][chosen].to(masks.dtype)
                parts.update(
                    l1=losses.l1_loss(boxes, target_boxes),
                    giou=losses.giou_loss(boxes, target_boxes),
                    bce=losses.bce_loss(masks, target_masks),
                    dice=losses.dice_loss(masks, target_masks),
                    iou=F.mse_loss(iou, losses.box_iou(boxes, target_boxes).detach()),
                )
                if isinstance(self.box_decoder, QueryBoxDecoder):
                    log_heat = torch.log_softmax(self.box_decoder.scores(states, feats), dim=-1)
                    parts["heat"] = losses.heat_map_loss(log_heat, batch["target_masks"])
                out.boxes, out.mask_logits, out.iou = boxes, masks, iou
        if self.patch_classifier is not None and "patch_targets" in batch:
            logits = self.patch_classifier(image_feats).flatten(0, 1).float()
            parts["patch"] = F.cross_entropy(logits, batch["patch_targets"].flatten(0, 1))
        if self.patch_geometry is not None and "patch_geometry" in batch:
            error = (self.patch_geometry(image_feats).float() - batch["patch_geometry"]).abs()
            weight = batch["patch_geometry_weight"][..., None]
            parts["geometry"] = (weight * error).sum() / (4 * weight.sum()).clamp(min=1.0)
        weights = self.config.loss_weights
        out.loss = sum(getattr(weights, name) * value for name, value in parts.items())
        return out

    # ---------------------------------------------------------------------------------- generation
    def prompt_ids(self, command: str) -> list[int]:
        """Token ids of the prompt for ``command``, image placeholders expanded."""
        return tokens.encode_prompt(
            self.require_tokenizer(),
            self.config.prompt_template,
            command,
            self.config.image_token_id,
            self.config.num_image_tokens,
        )

    def prompt_embeddings(
        self,
        pixel_values: torch.Tensor,
        command: str,
        prompt_boxes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """The decoding loop's prefix: inputs_embeds (1, T, d), image_feats (1, N, d), prompt ids.

        ``prompt_boxes`` (K, 4) are the boxes of the ``<vis>`` tokens written in ``command``.
        """
        ids = self.prompt_ids(command)
        image_feats = self.encode_image(pixel_values)
        input_ids = torch.tensor([ids], device=self.device)
        return self.embed_inputs(input_ids, image_feats, prompt_boxes), image_feats, ids

    def _step(self, embeds: torch.Tensor, cache: DynamicCache) -> torch.Tensor:
        """Runs (1, t, d) embeddings through the LM with the cache; returns the last state (1, d)."""
        out = self.language_model(inputs_embeds=embeds, cache=cache, use_cache=True)
        return out.last_hidden_state[:, -1]

    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.Tensor,
        command: str,
        *,
        prompt_boxes: torch.Tensor | None = None,
        max_new_tokens: int = 32,
        max_objects: int | None = None,
        logits_processor: LogitsProcessor | None = None,
    ) -> Generation:
        """KV-cached greedy decoding of one answer; each ``<vis>`` is decoded as it is emitted.

        When the model emits ``<vis>``, the heads decode the state that predicted it, and the next
        step is fed ``embed(<vis>) + box_encoder(box)`` so later tokens see what was found.
        Decoding stops at EOS, after ``max_new_tokens`` tokens, or after ``max_objects`` boxes.

        Arguments:
            pixel_values (torch.Tensor): (1, 3, S, S) from ``preprocess``.
            logits_processor: ``f(ids (1, t), logits (1, V)) -> logits``, as transformers'
                logits processors; tests use it to force an answer.
        """
        embeds, image_feats, ids = self.prompt_embeddings(pixel_values, command, prompt_boxes)
        cache = DynamicCache(config=self.backbone.config.text_config)
        return greedy_decode(
            self,
            self._step(embeds, cache),
            step=lambda next_embed: self._step(next_embed, cache),
            decode_vis=lambda hidden: self.decode_vis(hidden, image_feats, pixel_values),
            vis_embedding=self.vis_input_embedding,
            prompt_ids=ids,
            max_new_tokens=max_new_tokens,
            max_objects=max_objects,
            logits_processor=logits_processor,
        )

    def answer_text(self, token_ids: list[int]) -> str:
        """The generated ids as text: special tokens dropped except ``<vis>``, shown as " <vis>"."""
        tokenizer = self.require_tokenizer()
        segments: list[list[int]] = [[]]
        for token in token_ids:
            if token == self.config.vis_token_id:
                segments.append([])
            else:
                segments[-1].append(token)
        texts = [tokenizer.decode(s, skip_special_tokens=True).rstrip() for s in segments]
        return re.sub(r"\s+", " ", f" {tokens.VIS_TOKEN}".join(texts)).strip()

    def answer(
        self,
        image: np.ndarray,
        command: str,
        *,
        max_new_tokens: int = 32,
        max_objects: int | None = None,
        prompt_boxes: np.ndarray | None = None,
        logits_processor: LogitsProcessor | None = None,
    ) -> Answer:
        """Answers one command about one HxWx3 uint8 RGB image.

        Boxes and masks are normalised over the full image (it is stretched, never cropped):
        multiply x by W and y by H for pixels. With the text-coordinate head, the answer's
        ``[x1,y1,x2,y2]`` texts are parsed (malformed text gives no detection) with score 1.
        """
        pixel_values = self.preprocess([image])
        if prompt_boxes is not None:
            prompt_boxes = torch.as_tensor(prompt_boxes, dtype=self.dtype, device=self.device)
        gen = self.generate(
            pixel_values,
            command,
            prompt_boxes=prompt_boxes,
            max_new_tokens=max_new_tokens,
            max_objects=max_objects,
            logits_processor=logits_processor,
        )
        return self.to_answer(gen, max_objects)

    def to_answer(self, gen: Generation, max_objects: int | None = None) -> Answer:
        """A decoded ``Generation`` as an ``Answer`` (scores = P(``<vis>``) x predicted IoU); every
        decoding loop (this one, the runtime's) reads its generation through here."""
        text = self.answer_text(gen.token_ids)
        if self.config.head == "text_coords":
            found = tokens.parse_text_boxes(text)[:max_objects]
            detections = [Detection(p, b, None, 1.0) for p, b in found]
            return Answer(text=text, detections=detections, num_tokens=gen.num_tokens)
        scores = (gen.vis_probs * gen.ious).clamp(0, 1).float().cpu().numpy()
        boxes = gen.boxes.float().cpu().numpy()
        masks = gen.mask_logits.float().cpu().numpy()
        detections = [
            Detection(phrase, boxes[i], masks[i], float(scores[i]))
            for i, phrase in enumerate(gen.phrases)
        ]
        return Answer(text=text, detections=detections, num_tokens=gen.num_tokens)

    def locate(self, image: np.ndarray, command: str, **kwargs) -> list[Detection]:
        """``answer(image, command, **kwargs).detections``."""
        return self.answer(image, command, **kwargs).detections

    # ---------------------------------------------------------------------------- trainable parts
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by role; every parameter in exactly one group."""
        groups: dict[str, list[nn.Parameter]] = {}
        for name, param in self.named_parameters():
            groups.setdefault(_group_of(name), []).append(param)
        return groups

    def trainable_summary(self) -> dict[str, tuple[int, int]]:
        """Per group: (trainable, total) parameter counts, plus a "total" row.

        The ``<vis>`` embedding rows are counted inside the LM embedding group, which is frozen
        as a whole under LoRA while peft trains the new rows separately (group "new tokens").
        """
        summary = {}
        for group, params in self.parameter_groups().items():
            total = sum(p.numel() for p in params)
            trainable = sum(p.numel() for p in params if p.requires_grad)
            summary[group] = (trainable, total)
        summary["total"] = tuple(sum(v[i] for v in summary.values()) for i in (0, 1))
        return summary

    def freeze_vision_tower(self, frozen: bool = True) -> None:
        """The CLIP tower is frozen by default in LLaVA-style training (DESIGN.md)."""
        self.backbone.model.vision_tower.requires_grad_(not frozen)

    def add_lora(self, r: int = 8, alpha: int = 16, dropout: float = 0.05) -> None:
        """Injects LoRA (peft) into the LM's q_proj/v_proj only; freezes the rest of the backbone
        except the projector, and makes the ``<vis>`` rows of the input embedding and the LM head
        trainable (peft's trainable tokens). Heads stay trainable. Recorded in ``config.lora``.
        """
        from peft import LoraConfig, inject_adapter_in_model

        if self.config.lora is not None:
            raise RuntimeError("LoRA is already injected into this model")
        ids = [self.config.vis_token_id]
        lora = LoraConfig(
            r=r,
            lora_alpha=alpha,
            lora_dropout=dropout,
            target_modules=LORA_TARGET_MODULES,
            trainable_token_indices={"embed_tokens": ids, "lm_head": ids},
        )
        inject_adapter_in_model(lora, self.backbone)
        self.backbone.model.multi_modal_projector.requires_grad_(True)
        self.config.lora = {"r": r, "alpha": alpha, "dropout": dropout}

    # ---------------------------------------------------------------------------- directory I/O
    def save_pretrained(self, directory: str | Path, *, adapter_only: bool = False) -> None:
        """Writes ``pgpt_config.json``, the weights and the tokenizer files. Never pickle.

        By default ``model.safetensors`` holds every weight (LoRA included). With
        ``adapter_only`` (a model made by ``from_llava``), ``adapter.safetensors`` holds only the
        trainable backbone weights (LoRA, projector, ``<vis>`` rows) and the heads: tens of MB for a
        7B model, whose frozen weights ``from_pretrained`` reads again from ``config.base_llava``.
        """
        if adapter_only and self.config.base_llava is None:
            raise ValueError("adapter_only needs a model wrapped with from_llava (no base_llava)")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.config.to_dict(), indent=2, sort_keys=True)
        (directory / CONFIG_NAME).write_text(text + "\n")
        state = _state_for_saving(self)
        if adapter_only:
            trainable = {n for n, p in self.named_parameters() if p.requires_grad}
            state = {
                n: t for n, t in state.items() if n in trainable or not n.startswith("backbone.")
            }
        name = ADAPTER_NAME if adapter_only else WEIGHTS_NAME
        safetensors.torch.save_file(state, str(directory / name))
        self.require_tokenizer().save_pretrained(directory)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, dtype: torch.dtype | None = None, device: str = "cpu"
    ) -> PerceptionGPT:
        """Loads a directory written by ``save_pretrained`` (weights allocated once, no random
        initialisation of the full model)."""
        directory = Path(directory)
        config_path = directory / CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(
                f"{config_path} not found: pass a directory written by PerceptionGPT.save_pretrained"
                " (for a plain LLaVA checkpoint use PerceptionGPT.from_llava)"
            )
        config = PerceptionGPTConfig.from_dict(json.loads(config_path.read_text()))
        tokenizer = AutoTokenizer.from_pretrained(directory)
        if (directory / ADAPTER_NAME).is_file():
            return cls._from_adapter(directory, config, tokenizer, dtype=dtype, device=device)
        lora = config.lora
        config.lora = None
        with init_empty_weights():
            model = cls(config, tokenizer=tokenizer)
            if lora is not None:
                model.add_lora(**lora)
        state = safetensors.torch.load_file(str(directory / WEIGHTS_NAME), device=device)
        _, unexpected = model.load_state_dict(state, strict=False, assign=True)
        for sub in model.modules():
            if isinstance(sub, PreTrainedModel):
                sub.tie_weights()
        model._restore_token_originals()
        still_meta = [n for n, p in model.named_parameters() if p.is_meta]
        if unexpected or still_meta:
            raise ValueError(
                f"{directory} does not match its config: missing {still_meta[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        model.to(device=device, dtype=dtype)
        return model.eval()

    @classmethod
    def _from_adapter(
        cls,
        directory: Path,
        config: PerceptionGPTConfig,
        tokenizer: PreTrainedTokenizerBase,
        *,
        dtype: torch.dtype | None,
        device: str,
    ) -> PerceptionGPT:
        """Base LLaVA weights from ``config.base_llava``, the rest from ``adapter.safetensors``."""
        from pgpt_ros.model.builder import load_llava_backbone, resize_vocabulary

        backbone = load_llava_backbone(Path(config.base_llava), dtype)
        vocab = config.backbone["text_config"]["vocab_size"]
        if backbone.get_input_embeddings().num_embeddings != vocab:
            resize_vocabulary(backbone, vocab)
        lora = config.lora
        model = cls(dataclasses.replace(config, lora=None), backbone=backbone, tokenizer=tokenizer)
        if lora is not None:
            model.add_lora(**lora)
        state = safetensors.torch.load_file(str(directory / ADAPTER_NAME))
        missing, unexpected = model.load_state_dict(state, strict=False)
        heads_missing = [n for n in missing if not n.startswith("backbone.")]
        if unexpected or heads_missing:
            raise ValueError(
                f"{directory / ADAPTER_NAME} does not match its config: missing "
                f"{heads_missing[:5]}, unexpected {unexpected[:5]}"
            )
        return model.to(device=device, dtype=dtype or backbone.dtype).eval()

    def _restore_token_originals(self) -> None:
        """peft keeps a non-persistent copy of the original ``<vis>`` rows (used to unmerge);
        after a load from the meta device it is recomputed from the loaded base weights."""
        for module in self.modules():
            originals = getattr(module, "trainable_tokens_original", None)
            if originals is None:
                continue
            for name, indices in module.token_indices.items():
                weight = module.get_base_layer().weight
                originals[name] = weight[indices].detach().clone()

    def use_sam_mask_decoder(self, sam_dir: str | Path) -> None:
        """Replaces the mask decoder by a local HF SAM checkpoint's (e.g. sam-vit-base), driven by
        ``SamMaskDecoderAdapter``; its token projection is new (random). Recorded in the config."""
        sam_dir = Path(sam_dir)
        if not (sam_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{sam_dir} is not a Hugging Face SAM directory (no config.json); download e.g. "
                "facebook/sam-vit-base once and pass its local path"
            )
        sam = SamModel.from_pretrained(sam_dir, local_files_only=True, attn_implementation="sdpa")
        decoder = SamMaskDecoderAdapter(
            hidden_size=self.config.hidden_size, sam=sam, mask_size=self.config.mask_size
        )
        self.mask_decoder = decoder.to(self.device, self.dtype)
        self.config = dataclasses.replace(self.config, mask_decoder="sam", sam=sam.config.to_dict())

    @classmethod
    def from_llava(
        cls,
        llava_dir: str | Path,
        config_overrides: dict | None = None,
        *,
        dtype: torch.dtype | None = None,
    ) -> PerceptionGPT:
        """Wraps a local HF-format LLaVA checkpoint (e.g. llava-1.5-7b-hf): adds ``<vis>``,
        grows the embeddings only if the tokenizer outgrew them, and builds new random heads."""
        from pgpt_ros.model.builder import wrap_llava

        return wrap_llava(cls, Path(llava_dir), config_overrides or {}, dtype=dtype)


def _state_for_saving(module: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with every name stored: a tensor shared by two names (SAM's tied positional
    matrix) is cloned for the second name, since safetensors refuses shared storage; loading
    re-ties them with each sub-model's ``tie_weights``."""
    state, seen = {}, set()
    for name, tensor in module.state_dict().items():
        pointer = tensor.untyped_storage().data_ptr()
        state[name] = tensor.clone() if pointer in seen else tensor.contiguous()
        seen.add(pointer)
    return state


_GROUP_PATTERNS = [
    ("lora", re.compile(r"lora_")),
    ("new tokens", re.compile(r"trainable_tokens_delta")),
    ("vision tower", re.compile(r"^backbone\.model\.vision_tower\.")),
    ("projector", re.compile(r"^backbone\.model\.multi_modal_projector\.")),
    ("image position", re.compile(r"^image_position\.")),
    ("LM embeddings", re.compile(r"embed_tokens|^backbone\.lm_head")),
    ("LM base", re.compile(r"^backbone\.model\.language_model\.")),
    ("box decoder", re.compile(r"^box_decoder\.")),
    ("box encoder", re.compile(r"^box_encoder\.")),
    ("mask decoder", re.compile(r"^mask_decoder\.")),
    ("score head", re.compile(r"^score_head\.")),
    ("patch classifier (training only)", re.compile(r"^patch_classifier\.")),
    ("patch geometry (training only)", re.compile(r"^patch_geometry\.")),
]


def _group_of(name: str) -> str:
    for group, pattern in _GROUP_PATTERNS:
        if pattern.search(name):
            return group
    raise ValueError(f"parameter {name} belongs to no group; extend _GROUP_PATTERNS")
