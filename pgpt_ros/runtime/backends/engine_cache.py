"""The TensorRT engine cache: one serialized engine per head and precision, and a manifest.

An engine is only valid for the graph, TensorRT version, GPU and settings it was built with, so
each entry stores that key; the cache decides load or (re)build and logs why. It never crashes on
a bad cache: a missing file, a key that differs, bytes whose sha256 differs from the manifest, or
bytes the runtime cannot deserialize all mean rebuild. Only a freshly built engine that cannot be
deserialized is an error. Building and deserializing are passed in, so this module is plain
Python and is tested without TensorRT.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pgpt_ros.export.names import ENGINE_MANIFEST

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized engine depends on.

    Attributes:
        onnx_sha256 (str): the graph it was built from.
        tensorrt_version (str), gpu_name (str), compute_capability (str): engines do not move
            between TensorRT versions or GPU models.
        precision (str): "fp16" or "fp32".
        shapes (dict): input name -> [min, opt, max] shapes of the optimisation profile.
    """

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    shapes: dict[str, list[list[int]]]

    def to_dict(self) -> dict[str, Any]:
        # JSON-normalised so a key equals its reload (tuples become lists).
        return json.loads(json.dumps(dataclasses.asdict(self), sort_keys=True))

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """Fields whose stored value differs from this key's."""
        current = self.to_dict()
        return sorted(k for k in set(current) | set(stored) if current.get(k) != stored.get(k))


@dataclass
class CacheResult(Generic[T]):
    """A loaded engine and what the cache did: "loaded", "built" or "rebuilt" (and why)."""

    engine: T
    action: str
    reason: str


class EngineCache:
    """Engines in ``directory``, described by ``directory/engines.json``.

    The manifest maps each engine file name to ``{"key": EngineKey, "sha256": ..., "notes": {}}``;
    notes hold facts measured on the engine (the mask decoder's FP16 parity) and are dropped
    whenever the engine is rebuilt.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.manifest_path = self.directory / ENGINE_MANIFEST

    def read_manifest(self) -> dict[str, Any]:
        """The manifest; an unreadable one counts as empty (every engine is rebuilt)."""
        if not self.manifest_path.is_file():
            return {}
        try:
            data = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as error:
            log.warning("engine manifest %s unreadable (%s): rebuilding", self.manifest_path, error)
            return {}
        return data if isinstance(data, dict) else {}

    def _write_manifest(self, data: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.manifest_path)

    def notes(self, file: str) -> dict[str, Any]:
        """Facts recorded for an engine (empty if none)."""
        entry = self.read_manifest().get(file)
        return dict(entry.get("notes", {})) if isinstance(entry, dict) else {}

    def set_notes(self, file: str, **notes: Any) -> None:
        data = self.read_manifest()
        if file not in data:
            raise KeyError(f"{file} is not in the engine manifest")
        data[file].setdefault("notes", {}).update(notes)
        self._write_manifest(data)

    def stale_reason(self, file: str, key: EngineKey) -> str | None:
        """Why the cached ``file`` cannot be used for ``key``, or None if it can be loaded."""
        entry = self.read_manifest().get(file)
        path = self.directory / file
        if not isinstance(entry, dict) or not path.is_file():
            return "not in the cache"
        diff = key.differences(entry.get("key", {}))
        if diff:
            return f"key differs in {', '.join(diff)}"
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry.get("sha256"):
            return "file is corrupt (sha256 differs from the manifest)"
        return None

    def load_or_build(
        self,
        file: str,
        key: EngineKey,
        *,
        build: Callable[[], bytes],
        deserialize: Callable[[bytes], T | None],
        force_rebuild: bool = False,
    ) -> CacheResult[T]:
        """The engine ``file`` for ``key``: loaded from the cache when valid, else built, saved
        and loaded. Every decision is logged with its reason.

        Arguments:
            build: returns serialized engine bytes (TensorRT's builder in production).
            deserialize: bytes -> engine, None (or an exception) when the bytes are unusable.
        Raises:
            RuntimeError: a freshly built engine could not be deserialized.
        """
        reason = "force_rebuild is set" if force_rebuild else self.stale_reason(file, key)
        if reason is None:
            data = (self.directory / file).read_bytes()
            engine = _try_deserialize(deserialize, data)
            if engine is not None:
                log.info("engine %s: loaded from the cache", file)
                return CacheResult(engine, "loaded", "cache hit")
            reason = "TensorRT could not deserialize the cached file"
        action = "built" if reason == "not in the cache" else "rebuilt"
        log.info("engine %s: building (%s)", file, reason)
        data = build()
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f"{file}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.directory / file)
        manifest = self.read_manifest()
        manifest[file] = {
            "key": key.to_dict(),
            "sha256": hashlib.sha256(data).hexdigest(),
            "notes": {},
        }
        self._write_manifest(manifest)
        engine = _try_deserialize(deserialize, data)
        if engine is None:
            raise RuntimeError(f"engine {file}: a freshly built engine could not be deserialized")
        return CacheResult(engine, action, reason)


def _try_deserialize(deserialize: Callable[[bytes], T | None], data: bytes) -> T | None:
    try:
        return deserialize(data)
    except Exception as error:  # a corrupt engine may raise instead of returning None
        log.warning("deserializing an engine failed: %s", error)
        return None
