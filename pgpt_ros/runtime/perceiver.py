"""Perceiver: (frame, command) -> detections in the frame's pixels. What the node serves, and what
evaluation, the demo and the benchmarks measure.

    perceiver = Perceiver.load("")                   # the embedded default model, head backend auto
    perceiver.set_image(rgb, image_id=seq)           # the vision work of one frame, kept
    found = perceiver.predict("find the red circle") # a command about it (again and again)
    found = perceiver.locate(rgb, "the blue star", image_id=seq)   # both in one call

As SamPredictor, the frame is explicit: ``set_image`` runs the vision tower once, and every
``predict`` on that frame reuses its features and the image prefix in the KV cache. The answer
comes from the fast path (``decoder.StaticDecoder``: static KV cache, CUDA graphs on a GPU), each
``<vis>`` decoded by the selected head backend the moment it appears; ``postprocess`` drops
repeats and low scores and maps the rest to pixels. Decoding is held to the answer grammar
(``pgpt_ros.model.grammar``), so an answer is "not found" or ``phrase <vis>`` items; one the
token limit cut short is never served: ``predict`` raises ``IncompleteAnswer``.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgpt_ros.commands import BadCommand, normalize_command
from pgpt_ros.model.generation import Answer, LogitsProcessor, to_answer
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.model.preprocess import check_image
from pgpt_ros.policy import AnswerPolicy, IncompleteAnswer
from pgpt_ros.runtime.backends import (
    HeadBackend,
    TorchHeads,
    default_engine_dir,
    select_head_backend,
)
from pgpt_ros.runtime.decoder import StaticDecoder
from pgpt_ros.runtime.frame_cache import CachedFrame, frame_key, prefix_length
from pgpt_ros.runtime.loading import load_model
from pgpt_ros.runtime.postprocess import PixelDetection, select, to_pixels

# Command tokens the KV cache has room for (besides the image prefix and the answer).
MAX_COMMAND_TOKENS = 128


@dataclass
class Perception:
    """The answer to one command: text, detections in pixels, tokens generated, seconds."""

    answer: str
    detections: list[PixelDetection]
    num_tokens: int
    inference_s: float


class Perceiver:
    """Answers commands about frames with one loaded model. Not thread-safe: one worker calls it.

    Arguments:
        model (PerceptionGPT): a loaded model, already on its device and dtype.
        heads (HeadBackend | None): decodes each ``<vis>``; None = the model's own torch heads.
        policy (AnswerPolicy): answer length, object limit, score threshold, masks; a call may
            pass another (the node does when its parameters change).
        max_command_tokens (int): room for the command's tokens in the KV cache; longer commands
            are ``BadCommand``. The cache also holds the image prefix and ``policy``'s answer.
        cuda_graphs (bool | None): capture decoding steps in CUDA graphs; None = on CUDA.
        compile_decode (bool): torch.compile the one-token step (see ``StaticDecoder``).

    Attributes:
        engine_dir (Path | None): where ``load`` cached the exported heads (None: torch heads).
    """

    def __init__(
        self,
        model: PerceptionGPT,
        heads: HeadBackend | None = None,
        *,
        policy: AnswerPolicy | None = None,
        max_command_tokens: int = MAX_COMMAND_TOKENS,
        cuda_graphs: bool | None = None,
        compile_decode: bool = False,
    ) -> None:
        self.model = model.eval()
        self.heads = heads or TorchHeads(model)
        self.policy = policy or AnswerPolicy()
        self.max_command_tokens = max_command_tokens
        self.decoder = StaticDecoder(
            model,
            self.heads,
            max_text_tokens=max_command_tokens + self.policy.max_new_tokens,
            cuda_graphs=cuda_graphs,
            compile_decode=compile_decode,
        )
        self._frame: CachedFrame | None = None
        self.engine_dir: Path | None = None

    @classmethod
    def load(
        cls,
        model_path: str = "",
        *,
        device: str = "cpu",
        dtype: str = "float32",
        head_backend: str = "auto",
        engine_dir: str | None = None,
        force_engine_rebuild: bool = False,
        policy: AnswerPolicy | None = None,
        compile_decode: bool = False,
    ) -> Perceiver:
        """Loads the model ("" = the embedded default) and picks the head backend; raises
        ValueError / FileNotFoundError / RuntimeError with a message that names the fix."""
        model = load_model(model_path, device, dtype)
        cache = Path(engine_dir) if engine_dir else default_engine_dir()
        heads = select_head_backend(
            head_backend, model, engine_dir=cache, force_rebuild=force_engine_rebuild
        )
        perceiver = cls(model, heads, policy=policy, compile_decode=compile_decode)
        perceiver.engine_dir = None if heads.name == "torch" else cache
        return perceiver

    @property
    def backend(self) -> str:
        """The head backend in use ("torch", "onnxruntime" or "tensorrt")."""
        return self.heads.name

    # ----------------------------------------------------------------------------- the frame
    @torch.inference_mode()
    def set_image(self, image: np.ndarray, image_id: Hashable | None = None) -> None:
        """Encodes ``image`` (HxWx3 uint8 RGB) for the commands that follow.

        ``image_id`` names the frame: setting the same id (and shape) again keeps the work
        already done, so callers may call this before every command. ValueError on a bad image.
        """
        check_image(image)
        key = frame_key(image_id, image.shape)
        if key is not None and self._frame is not None and self._frame.key == key:
            return
        self._frame = None  # a failure below leaves no frame rather than a stale one
        pixel_values, (transform,) = self.model.preprocess([image])
        feats = self.model.encode_image(pixel_values)
        self._frame = CachedFrame(key, transform, pixel_values, feats)

    # ----------------------------------------------------------------------------- commands
    def prepare(self, command: str, policy: AnswerPolicy | None = None) -> tuple[str, list[int]]:
        """The normalised command and its prompt ids; BadCommand when it cannot be answered
        (see ``pgpt_ros.commands``, or too many tokens for the KV cache)."""
        policy = policy or self.policy
        text = normalize_command(command)
        ids = self.model.prompt_ids(text)
        prefix = prefix_length(self.model, ids)
        tokens = len(ids) - prefix
        room = self.decoder.command_room(prefix, policy.max_new_tokens)
        limit = min(self.max_command_tokens, room)
        if tokens > limit:
            raise BadCommand(
                f"command is {tokens} tokens; this model reads at most {limit} with "
                f"max_new_tokens {policy.max_new_tokens}"
            )
        return text, ids

    @torch.inference_mode()
    def answer(
        self,
        command: str,
        *,
        policy: AnswerPolicy | None = None,
        logits_processor: LogitsProcessor | None = None,
        constrain: bool = True,
    ) -> Answer:
        """The model's answer about the set frame, in the model's normalised frame, every
        ``<vis>`` kept (what ``predict`` filters and maps to pixels); ``answer.complete`` is
        False when the token limit cut it. ``logits_processor`` and ``constrain`` (the answer
        grammar) are as in ``pgpt_ros.model.generation`` (tests, benchmarks)."""
        policy = policy or self.policy
        frame = self._frame
        if frame is None:
            raise RuntimeError("no frame: call set_image(image) before predict/answer")
        _, ids = self.prepare(command, policy)
        model = self.model
        prefix = prefix_length(model, ids)
        prefix_ids = tuple(ids[:prefix])
        embeds = model.embed_inputs(torch.tensor([ids], device=model.device), frame.image_feats)
        cached = frame.prefix_ids == prefix_ids
        frame.prefix_ids = None  # set again only after a whole answer: no stale hit on failure
        if cached:
            self.decoder.truncate(prefix)
        else:
            self.decoder.prefill(embeds[:, :prefix])
        gen = self.decoder.generate(
            embeds[:, prefix:],
            frame.image_feats,
            frame.pixel_values,
            ids,
            max_new_tokens=policy.max_new_tokens,
            max_objects=policy.max_objects,
            logits_processor=logits_processor,
            constrain=constrain,
        )
        frame.prefix_ids = prefix_ids
        return to_answer(model, gen, policy.max_objects)

    def predict(self, command: str, *, policy: AnswerPolicy | None = None) -> Perception:
        """Answers ``command`` about the set frame, in its pixels, each object once and above
        the score threshold. BadCommand for a command that cannot be answered; IncompleteAnswer
        when ``policy.max_new_tokens`` ends the answer before it is whole."""
        policy = policy or self.policy
        start = time.perf_counter()
        answer = self.answer(command, policy=policy)
        if not answer.complete:
            raise IncompleteAnswer(
                answer.text,
                f"the answer used all {policy.max_new_tokens} tokens of max_new_tokens before it "
                "ended; raise max_new_tokens",
            )
        found = to_pixels(select(answer.detections, policy), self._frame.transform,
                          policy.with_masks)  # fmt: skip
        return Perception(answer.text, found, answer.num_tokens, time.perf_counter() - start)

    def locate(
        self,
        image: np.ndarray,
        command: str,
        *,
        image_id: Hashable | None = None,
        policy: AnswerPolicy | None = None,
    ) -> Perception:
        """``set_image(image, image_id)`` then ``predict(command)``; the seconds include both."""
        start = time.perf_counter()
        self.set_image(image, image_id)
        perception = self.predict(command, policy=policy)
        perception.inference_s = time.perf_counter() - start
        return perception

    def warmup(self) -> None:
        """Captures every decoding step shape (and compiles the step, if asked) and answers once
        about a blank frame (no id: not kept), so no real command pays for either."""
        self.decoder.warmup()
        side = self.model.config.image_size
        self.set_image(np.zeros((side, side, 3), np.uint8))
        self.answer("find the object", policy=AnswerPolicy(max_new_tokens=2))
        self._frame = None

    def close(self) -> None:
        """Drops the model, its KV cache and CUDA graphs so their memory can be freed."""
        self._frame = None
        self.model = None
        self.decoder = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
