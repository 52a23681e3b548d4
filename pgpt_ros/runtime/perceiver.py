"""Perceiver: (image, command) -> detections in source-image pixels. What the ROS node calls.

The model works in a normalised frame: every image is stretched (never cropped) to the model's
square input, so a normalised box or mask covers the full source image. This class is the one place
that maps those outputs back to the source image's pixels, and the one place that turns a
``model_path`` parameter into a loaded model on a device, so the node holds no model logic.

The answer itself comes from the fast path (``decoder.StaticDecoder``: static KV cache, CUDA graphs
on a GPU), with the image prefix kept for further commands on the same frame (``frame_cache``) and
each ``<vis>`` decoded by the selected head backend the moment it appears.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pgpt_ros.model import (
    Answer,
    Detection,
    PerceptionGPT,
    PerceptionGPTConfig,
    build_model,
)
from pgpt_ros.model.distinct import distinct_detections
from pgpt_ros.runtime.decoder import LogitsProcessor, StaticDecoder
from pgpt_ros.runtime.frame_cache import CachedFrame, FrameCache, prefix_length
from pgpt_ros.runtime.heads import BACKENDS, HeadBackend, TorchHeads, select_head_backend

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "default_model"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class PixelDetection:
    """One object in source-image pixels.

    Attributes:
        phrase (str): the answer words before its ``<vis>``.
        score (float): in [0, 1].
        box (np.ndarray): (4,) float64 xyxy in source pixels (x right, y down).
        mask (np.ndarray | None): (H, W) bool over the full source image; None when masks were not
            asked for or the model has no mask head.
    """

    phrase: str
    score: float
    box: np.ndarray
    mask: np.ndarray | None


@dataclass
class Perception:
    """The answer to one command: text, detections, tokens generated and inference seconds."""

    answer: str
    detections: list[PixelDetection]
    num_tokens: int
    inference_s: float


def check_image(image: np.ndarray) -> None:
    """Raises ValueError unless ``image`` is a non-empty HxWx3 uint8 array."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must be HxWx3 (RGB) with H, W > 0, got shape {image.shape}")


def to_pixels(detection: Detection, width: int, height: int, with_mask: bool) -> PixelDetection:
    """Scales a normalised detection to a ``width`` x ``height`` source image."""
    box = detection.box.astype(np.float64) * np.array([width, height, width, height])
    mask = None
    if with_mask and detection.mask_logits is not None:
        logits = torch.from_numpy(detection.mask_logits)[None, None].float()
        # Bilinear upsampling of the logits, then the 0-logit threshold: smooth edges at any size.
        mask = (F.interpolate(logits, size=(height, width), mode="bilinear") > 0)[0, 0].numpy()
    return PixelDetection(detection.phrase, float(detection.score), box, mask)


def load_model(model_path: str, device: str, dtype: str) -> PerceptionGPT:
    """``model_path`` "" = the embedded default; else a directory from ``save_pretrained``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    try:
        torch_device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r} is not a torch device: {error}") from None
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    if torch_device.type == "cpu" and dtype == "float16":
        raise ValueError("float16 needs a GPU device; use float32 (or bfloat16) on the CPU")
    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"model_path {path} is not a directory")
        return PerceptionGPT.from_pretrained(path, dtype=DTYPES[dtype], device=device)
    if (DEFAULT_MODEL_DIR / "pgpt_config.json").is_file():
        return PerceptionGPT.from_pretrained(DEFAULT_MODEL_DIR, dtype=DTYPES[dtype], device=device)
    log.warning("no trained default model in %s: using an UNTRAINED tiny model", DEFAULT_MODEL_DIR)
    torch.manual_seed(0)
    return build_model(PerceptionGPTConfig.tiny()).to(device=device, dtype=DTYPES[dtype])


class Perceiver:
    """Answers commands about images with one loaded model. Not thread-safe: one worker calls it.

    Arguments:
        model (PerceptionGPT): a loaded model, already on its device and dtype.
        heads (HeadBackend): decodes each ``<vis>``; None = the model's own torch heads.
        max_text_tokens (int): KV-cache room for the prompt text and the answer.
        cuda_graphs (bool | None): capture decoding steps in CUDA graphs; None = on CUDA.
        compile_decode (bool): torch.compile the one-token step (see ``StaticDecoder``).
    """

    def __init__(
        self,
        model: PerceptionGPT,
        heads: HeadBackend | None = None,
        *,
        max_text_tokens: int = 256,
        cuda_graphs: bool | None = None,
        compile_decode: bool = False,
    ) -> None:
        self.model = model.eval()
        self.heads = heads or TorchHeads(model)
        self.backend = self.heads.name
        self.decoder = StaticDecoder(
            model,
            self.heads,
            max_text_tokens=max_text_tokens,
            cuda_graphs=cuda_graphs,
            compile_decode=compile_decode,
        )
        self.frames = FrameCache()

    @classmethod
    def load(
        cls,
        model_path: str = "",
        *,
        device: str = "cpu",
        dtype: str = "float32",
        head_backend: str = "auto",
        engine_dir: str = "engines",
        force_engine_rebuild: bool = False,
    ) -> Perceiver:
        """Loads the model and picks the head backend; raises with a clear message on bad input."""
        if head_backend not in BACKENDS:
            raise ValueError(f"head_backend must be one of {BACKENDS}, got {head_backend!r}")
        model = load_model(model_path, device, dtype)
        heads = select_head_backend(
            head_backend, model, engine_dir=engine_dir, force_rebuild=force_engine_rebuild
        )
        return cls(model, heads)

    @torch.inference_mode()
    def answer(
        self,
        image: np.ndarray,
        command: str,
        *,
        image_id: object | None = None,
        max_new_tokens: int = 32,
        max_objects: int | None = 8,
        logits_processor: LogitsProcessor | None = None,
    ) -> Answer:
        """The model's normalised answer through the fast path (what ``locate`` maps to pixels).

        ``image_id`` names the frame: the same id (and shape) promises the same pixels, so the
        vision features and the image prefix in the KV cache are reused; a new id (or None)
        replaces them. ``logits_processor`` is as in ``PerceptionGPT.generate`` (tests, benches).
        """
        check_image(image)
        model = self.model
        ids = model.prompt_ids(command)
        prefix = prefix_length(model, ids)
        key = FrameCache.key(image_id, image.shape)
        frame = self.frames.get(key, tuple(ids[:prefix]))
        cached = frame is not None
        # Stored again only after a whole answer: a failure halfway leaves no stale hit behind.
        self.frames.clear()
        if frame is None:
            pixel_values = model.preprocess([image])
            feats = model.encode_image(pixel_values)
            frame = CachedFrame(key, pixel_values, feats, tuple(ids[:prefix]))
        embeds = model.embed_inputs(torch.tensor([ids], device=model.device), frame.image_feats)
        if cached:
            self.decoder.truncate(prefix)
        else:
            self.decoder.prefill(embeds[:, :prefix])
        gen = self.decoder.generate(
            embeds[:, prefix:],
            frame.image_feats,
            frame.pixel_values,
            ids,
            max_new_tokens=max_new_tokens,
            max_objects=max_objects,
            logits_processor=logits_processor,
        )
        self.frames.put(frame)
        return model.to_answer(gen, max_objects)

    def locate(
        self,
        image: np.ndarray,
        command: str,
        *,
        image_id: object | None = None,
        max_new_tokens: int = 32,
        max_objects: int = 8,
        with_masks: bool = True,
    ) -> Perception:
        """Answers ``command`` about ``image`` (HxWx3 uint8 RGB) in source-image pixels, each object
        once (``distinct_detections``). ``image_id`` names the frame: see ``answer``."""
        start = time.perf_counter()
        answer = self.answer(
            image,
            command,
            image_id=image_id,
            max_new_tokens=max_new_tokens,
            max_objects=max_objects,
        )
        height, width = image.shape[:2]
        found = distinct_detections(answer.detections)
        detections = [to_pixels(d, width, height, with_masks) for d in found]
        return Perception(answer.text, detections, answer.num_tokens, time.perf_counter() - start)

    def warmup(self, command: str = "find the object") -> None:
        """Answers ``command`` about a blank frame (no id: not kept), so the first real command does
        not pay for CUDA graph capture (and compilation of the step): call it at node start."""
        side = self.model.config.image_size
        self.answer(np.zeros((side, side, 3), np.uint8), command, max_new_tokens=2)

    def close(self) -> None:
        """Drops the model, its KV cache and CUDA graphs so their memory can be freed."""
        self.frames.clear()
        self.model = None
        self.decoder = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
