"""The speech recognisers by name: the one place that knows every engine of ``engine``'s interface."""

from __future__ import annotations

from pgpt_ros.voice.engine import ENGINES, Engine, EngineConfig


def load_engine(config: EngineConfig) -> Engine:
    """The engine ``config`` names, loaded; FileNotFoundError / ValueError with one clear line.

    Each engine's library is imported only when that engine is asked for.
    """
    if config.engine == "whisper":
        from pgpt_ros.voice.whisper import WhisperEngine

        return WhisperEngine(config)
    if config.engine == "pocketsphinx":
        from pgpt_ros.voice.sphinx import SphinxEngine

        return SphinxEngine(config)
    raise ValueError(f"engine must be one of {ENGINES}, got {config.engine!r}")
