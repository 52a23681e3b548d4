"""Greedy decoding of one answer over a static KV cache, each ``<vis>`` decoded the moment it appears.

Why not ``model.generate``: its dynamic cache grows tensors every step and re-runs the whole prompt
for each command. Here one ``StaticCache`` is allocated once; positions are written in place, so

* the image prefix stays in positions ``[0, prefix)`` while commands about the same frame overwrite
  only the positions after it (``truncate(prefix)`` then ``generate``), and
* every step has fixed shapes, so on CUDA each step shape is captured once in a CUDA graph and
  replayed: one launch per step instead of hundreds (docs/performance.md: 36 ms -> 8.6 ms per token
  for the 7B shape on an H100). Command prefills are padded to a few bucket lengths for the same
  reason, and ``warmup`` captures every bucket before the first command, so no command pays for a
  capture. All captured steps share one graph memory pool.

The same code runs eagerly on the CPU (fp32), padding included, so CI checks it against
``PerceptionGPT.generate``, the reference. Attention uses an explicit 4-D additive mask built from the
positions (key index <= query position): padded or stale cache slots after the valid length are
never attended to, and nothing in a step depends on host values, which graph capture requires.
"""

from __future__ import annotations

import torch
from transformers import StaticCache

from pgpt_ros.model.generation import Generation, LogitsProcessor, greedy_decode
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.runtime.backends.base import HeadBackend
from pgpt_ros.runtime.cuda_graphs import CapturedStep

# Prefill lengths a command is padded to (1 is the decode step). Few buckets = few graphs to
# capture; padding costs almost nothing, since a short prefill is bound by reading the weights.
BUCKETS = (1, 8, 16, 32, 64, 128, 256)


def rewind(cache: StaticCache, tokens: int) -> None:
    """Moves every layer's write position back by ``tokens``: the slots keep their values until
    later tokens overwrite them, and the attention mask hides them until then.

    In place on the device counter, so a captured graph's addresses stay valid. transformers 5.24's
    ``StaticCache.crop(-tokens)`` does the same, but 5.17's static layers have no ``crop``; both
    keep the position in ``cumulative_length``.
    """
    for layer in cache.layers:
        layer.cumulative_length.sub_(tokens)


def bucket(length: int) -> int:
    """The smallest bucket that holds ``length`` tokens."""
    for size in BUCKETS:
        if length <= size:
            return size
    raise ValueError(
        f"{length} prompt tokens after the image exceed the largest prefill ({BUCKETS[-1]}); "
        "shorten the command"
    )


class StaticDecoder:
    """The language model over one preallocated KV cache, and the greedy loop with the heads.

    Arguments:
        model (PerceptionGPT): on its device and dtype, in eval mode.
        heads (HeadBackend): decodes ``<vis>`` states and encodes boxes (any backend).
        max_text_tokens (int): room for all text (prompt without the image, and the answer).
        cuda_graphs (bool | None): capture steps in CUDA graphs; None = when the model is on CUDA.
        compile_decode (bool): compile the one-token step with torch.compile (inductor, fused
            kernels; 8.6 -> 6.3 ms per token for the 7B shape on an H100) before capturing it.
            Costs one to two minutes of compilation at ``warmup``.
    """

    @torch.inference_mode()
    def __init__(
        self,
        model: PerceptionGPT,
        heads: HeadBackend,
        *,
        max_text_tokens: int = 256,
        cuda_graphs: bool | None = None,
        compile_decode: bool = False,
    ) -> None:
        self.model = model
        self.heads = heads
        device = model.device
        self.use_graphs = device.type == "cuda" if cuda_graphs is None else cuda_graphs
        if self.use_graphs and device.type != "cuda":
            raise ValueError("CUDA graphs need the model on a CUDA device")
        text = model.backbone.config.text_config
        # A multiple of 16 keeps the mask rows aligned for SDPA's fused kernels.
        self.max_length = -(-(model.config.num_image_tokens + max_text_tokens) // 16) * 16
        self.cache = StaticCache(config=text, max_cache_len=self.max_length)
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        self.cache.early_initialization(
            batch_size=1,
            num_heads=text.num_key_value_heads,
            head_dim=head_dim,
            dtype=model.dtype,
            device=device,
        )
        self.length = 0  # valid cache positions; the cache keeps its own device-side counter
        self._position = torch.zeros((), dtype=torch.long, device=device)
        self._key_index = torch.arange(self.max_length, device=device)
        self._graphs: dict[int, CapturedStep] = {}
        self._pool = torch.cuda.graph_pool_handle() if self.use_graphs else None
        # CUDA graphs are captured here, so inductor is asked for kernels only.
        mode = "max-autotune-no-cudagraphs" if device.type == "cuda" else None
        self._decode_step = (
            torch.compile(self._lm, mode=mode, fullgraph=True, dynamic=False)
            if compile_decode
            else self._lm
        )
        vis = torch.tensor([model.config.vis_token_id], device=device)
        self._vis_embedding = model.embed_tokens(vis)

    # ------------------------------------------------------------------------------ cache control
    def truncate(self, length: int) -> None:
        """Forgets positions from ``length`` on; their slots are overwritten by later tokens."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a cache of {self.length} positions to {length}")
        rewind(self.cache, self.length - length)
        self.length = length

    @torch.inference_mode()
    def prefill(self, embeds: torch.Tensor) -> None:
        """Starts over with ``embeds`` (1, T, d) as the whole cache content (the image prefix).

        Eager on purpose: a long prefill is bound by compute, not by launches, and its length
        differs per prompt template. The cache is reset in place (captured graphs keep their
        addresses), which also repairs it after a step that failed halfway through the layers.
        """
        self.cache.reset()
        self.length = 0
        self._check_room(embeds.shape[1])
        self._position.fill_(0)
        self._lm(embeds)
        self.length = embeds.shape[1]

    def command_room(self, prefix: int, max_new_tokens: int) -> int:
        """The most command tokens that fit after a ``prefix``-token image prefix, leaving room
        for ``max_new_tokens`` answer tokens and for the command's padded prefill."""
        room = self.max_length - prefix
        largest_bucket = max((b for b in BUCKETS if b <= room), default=0)
        return max(0, min(room - max_new_tokens + 1, largest_bucket))

    def _check_room(self, tokens: int) -> None:
        if self.length + tokens > self.max_length:
            raise ValueError(
                f"{self.length} + {tokens} tokens exceed the KV cache of {self.max_length}; "
                "shorten the command or lower max_new_tokens (or raise max_text_tokens)"
            )

    # -------------------------------------------------------------------------------- LM forward
    def _lm(self, embeds: torch.Tensor) -> torch.Tensor:
        """(1, T, d) at positions ``_position + [0, T)`` -> last-layer states (1, T, d).

        Reads the position from a device tensor and builds the mask on the device, so a captured
        graph replays correctly at any position.
        """
        positions = self._position + torch.arange(embeds.shape[1], device=embeds.device)
        unseen = self._key_index[None, :] > positions[:, None]  # (T, L): future or stale slots
        mask = torch.zeros(unseen.shape, dtype=embeds.dtype, device=embeds.device)
        mask = mask.masked_fill(unseen, torch.finfo(embeds.dtype).min)[None, None]
        return self.model.run_language_model(embeds, self.cache, mask, positions[None])

    def _feed(self, embeds: torch.Tensor) -> torch.Tensor:
        """Appends (1, t, d) to the cache, padded to a bucket; returns the last real state (1, d)."""
        real = embeds.shape[1]
        size = bucket(real)
        self._check_room(size)
        if size > real:
            embeds = torch.cat([embeds, embeds.new_zeros(1, size - real, embeds.shape[2])], dim=1)
        self._position.fill_(self.length)
        step = self._decode_step if size == 1 else self._lm
        if self.use_graphs:
            if size not in self._graphs:
                self._graphs[size] = CapturedStep(
                    step, embeds, lambda: rewind(self.cache, size), self._pool
                )
            hidden = self._graphs[size](embeds)
        else:
            hidden = step(embeds)
        # The padded tail was written to the cache; moving the counter back makes later tokens
        # overwrite it, and the mask hides it until then.
        rewind(self.cache, size - real)
        self.length += real
        return hidden[:, real - 1]

    @torch.inference_mode()
    def warmup(self) -> None:
        """Runs (and on CUDA captures) every step shape once, then empties the cache: graph
        capture and compilation happen here, at start, never in the middle of serving."""
        width = self.model.config.hidden_size
        room = self.max_length - self.model.config.num_image_tokens
        for size in (b for b in BUCKETS if b <= room):
            self.cache.reset()
            self.length = 0
            self._feed(
                torch.zeros(1, size, width, dtype=self.model.dtype, device=self.model.device)
            )
        self.cache.reset()
        self.length = 0

    # ----------------------------------------------------------------------------- greedy answer
    @torch.inference_mode()
    def generate(
        self,
        command_embeds: torch.Tensor,
        image_feats: torch.Tensor,
        pixel_values: torch.Tensor,
        prompt_ids: list[int],
        *,
        max_new_tokens: int = 32,
        max_objects: int | None = None,
        logits_processor: LogitsProcessor | None = None,
        constrain: bool = True,
    ) -> Generation:
        """Greedy answer after the cached prefix; the same contract as ``PerceptionGPT.generate``.

        Arguments:
            command_embeds (torch.Tensor): (1, t, d) embeddings of the prompt after the prefix.
            image_feats (torch.Tensor): (1, N, d) the frame's projector outputs (the heads' keys).
            pixel_values (torch.Tensor): (1, 3, S, S) the frame's model input.
            prompt_ids (list[int]): the whole prompt's ids, for ``logits_processor``.
            constrain (bool): hold the answer to the model's answer grammar.
        """

        def decode_vis(hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            out = self.heads.decode(hidden, image_feats, pixel_values)
            return out.boxes, out.mask_logits, out.iou

        return greedy_decode(
            self.model,
            self._feed(command_embeds),
            step=self._feed,
            decode_vis=decode_vis,
            vis_embedding=lambda boxes: self._vis_embedding + self.heads.encode_box(boxes),
            prompt_ids=prompt_ids,
            max_new_tokens=max_new_tokens,
            max_objects=max_objects,
            logits_processor=logits_processor,
            constrain=constrain,
        )
