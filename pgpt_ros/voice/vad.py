"""Voice activity: the probability that each 32 ms frame of a 16 kHz stream is speech.

Silero VAD (MIT), run in ONNX Runtime. The model file is the one faster-whisper ships in its
package (``faster_whisper/assets/silero_vad_v6.onnx``), so it installs with the Whisper engine and
needs no download and no torch. faster-whisper runs it on whole files; this runs the same graph
one frame at a time, carrying its recurrent state (``h``, ``c``) and the 64-sample context that
the model prepends to every frame, which is what a live stream needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FRAME = 512  # samples per decision at 16 kHz (32 ms): the model's fixed frame
CONTEXT = 64  # samples of the previous frame the model sees in front of each frame


def silero_model_path() -> Path:
    """The ONNX file inside the installed faster-whisper package."""
    from faster_whisper.utils import get_assets_path

    return Path(get_assets_path()) / "silero_vad_v6.onnx"


class SileroVad:
    """Streaming speech probabilities. ``reset()`` between unrelated streams (files)."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = options.intra_op_num_threads = 1  # ~0.1 ms a frame
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(model_path or silero_model_path()), options, providers=["CPUExecutionProvider"]
        )
        self.reset()

    def reset(self) -> None:
        """Forgets the stream: zero state and context."""
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        """The speech probability of one (512,) float32 frame, the next in the stream."""
        if frame.shape != (FRAME,):
            raise ValueError(f"a VAD frame is {FRAME} samples, got {frame.shape}")
        window = np.concatenate([self._context, frame]).astype(np.float32)[None]
        probability, self._h, self._c = self._session.run(
            None, {"input": window, "h": self._h, "c": self._c}
        )
        self._context = frame[-CONTEXT:].astype(np.float32)
        return float(np.asarray(probability).reshape(-1)[0])
