"""The TensorRT engine cache and precision policy, with a fake builder (no TensorRT needed).

The fake "engine" is the bytes it was built from; deserialize rejects bytes that do not start with
the fake header, as TensorRT returns None for bytes it cannot read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys

import pytest

from pgpt_ros.export.manifest import HeadRecord, TensorInfo, profile_shapes
from pgpt_ros.export.names import ENGINE_MANIFEST, HEADS, MASK_DECODER
from pgpt_ros.runtime.backends.engine_cache import EngineCache, EngineKey
from pgpt_ros.runtime.backends.tensorrt_heads import MASK_FP16_TOLERANCE, load_head_engines

HEADER = b"fake-engine:"


class FakeBuilder:
    """Counts builds; each build's bytes name the engine and the build number."""

    def __init__(self) -> None:
        self.builds: list[str] = []

    def build(self, name: str) -> bytes:
        self.builds.append(name)
        return HEADER + f"{name}#{len(self.builds)}".encode()


def deserialize(data: bytes) -> str | None:
    return data.decode() if data.startswith(HEADER) else None


def make_key(**changes) -> EngineKey:
    key = EngineKey(
        onnx_sha256="a" * 64,
        tensorrt_version="10.9.0",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        precision="fp16",
        shapes={"vis_state": [[1, 128], [1, 128], [16, 128]]},
    )
    return dataclasses.replace(key, **changes)


def load(cache: EngineCache, builder: FakeBuilder, key: EngineKey, **kwargs):
    return cache.load_or_build(
        "box_decoder.fp16.engine",
        key,
        build=lambda: builder.build("box_decoder"),
        deserialize=deserialize,
        **kwargs,
    )


def test_builds_once_then_loads(tmp_path, caplog):
    cache, builder = EngineCache(tmp_path), FakeBuilder()
    first = load(cache, builder, make_key())
    assert (first.action, first.reason) == ("built", "not in the cache")
    with caplog.at_level(logging.INFO, logger="pgpt_ros.runtime.backends.engine_cache"):
        second = load(cache, builder, make_key())
    assert second.action == "loaded" and second.engine == first.engine
    assert builder.builds == ["box_decoder"]
    assert "loaded from the cache" in caplog.text
    entry = json.loads((tmp_path / ENGINE_MANIFEST).read_text())["box_decoder.fp16.engine"]
    assert entry["key"] == make_key().to_dict()


def test_key_round_trips_through_json():
    key = make_key()
    assert key.differences(json.loads(json.dumps(key.to_dict()))) == []


@pytest.mark.parametrize(
    "field, value",
    [
        ("onnx_sha256", "b" * 64),
        ("tensorrt_version", "10.10.0"),
        ("gpu_name", "NVIDIA H200"),
        ("compute_capability", "8.9"),
        ("precision", "fp32"),
        ("shapes", {"vis_state": [[1, 128], [1, 128], [32, 128]]}),
    ],
)
def test_any_key_difference_rebuilds(tmp_path, field, value):
    cache, builder = EngineCache(tmp_path), FakeBuilder()
    load(cache, builder, make_key())
    result = load(cache, builder, make_key(**{field: value}))
    assert result.action == "rebuilt" and field in result.reason
    assert len(builder.builds) == 2
    assert load(cache, builder, make_key(**{field: value})).action == "loaded"


def test_corrupt_file_is_rebuilt(tmp_path):
    cache, builder = EngineCache(tmp_path), FakeBuilder()
    load(cache, builder, make_key())
    (tmp_path / "box_decoder.fp16.engine").write_bytes(b"\x00garbage")
    result = load(cache, builder, make_key())
    assert result.action == "rebuilt" and "corrupt" in result.reason
    assert result.engine == "fake-engine:box_decoder#2"


def test_undeserializable_file_with_matching_hash_is_rebuilt(tmp_path):
    """Bytes the manifest vouches for but the runtime rejects (e.g. another TensorRT build)."""
    cache, builder = EngineCache(tmp_path), FakeBuilder()
    load(cache, builder, make_key())
    calls = []

    def reject_first(data: bytes) -> str | None:
        calls.append(data)
        return None if len(calls) == 1 else deserialize(data)

    result = cache.load_or_build(
        "box_decoder.fp16.engine",
        make_key(),
        build=lambda: builder.build("box_decoder"),
        deserialize=reject_first,
    )
    assert result.action == "rebuilt" and "deserialize" in result.reason
    assert len(builder.builds) == 2


def test_deserialize_that_raises_counts_as_corrupt(tmp_path):
    cache, builder = EngineCache(tmp_path), FakeBuilder()
    load(cache, builder, make_key())
    state = {"raised": False}

    def raise_once(data: bytes) -> str | None:
        if not state["raised"]:
            state["raised"] = True
            raise RuntimeError("bad magic")
        return deserialize(data)

    result = cache.load_or_build(
        "box_decoder.fp16.engine",
        make_key(),
        build=lambda: builder.build("box_decoder"),
        deserialize=raise_once,
    )
    assert result.action == "rebuilt"


def test_missing_file_and_garbage_manifest_rebuild(tmp_path):
    cache, builder = EngineCache(tmp_path), FakeBuilder()
    load(cache, builder, make_key())
    (tmp_path / "box_decoder.fp16.engine").unlink()
    assert load(cache, builder, make_key()).reason == "not in the cache"
    (tmp_path / ENGINE_MANIFEST).write_text("{not json")
    assert load(cache, builder, make_key()).action == "built"
    assert load(cache, builder, make_key()).action == "loaded"


def test_force_rebuild(tmp_path):
    cache, builder = EngineCache(tmp_path), FakeBuilder()
    load(cache, builder, make_key())
    result = load(cache, builder, make_key(), force_rebuild=True)
    assert result.action == "rebuilt" and "force" in result.reason
    assert len(builder.builds) == 2


def test_fresh_engine_that_cannot_load_is_an_error(tmp_path):
    cache = EngineCache(tmp_path)
    with pytest.raises(RuntimeError, match="freshly built"):
        cache.load_or_build(
            "x.engine", make_key(), build=lambda: b"not an engine", deserialize=deserialize
        )


def test_profile_shapes_cover_batch_one_to_max():
    record = HeadRecord(
        file="mask_decoder.onnx",
        sha256="0" * 64,
        inputs=[
            TensorInfo("vis_state", ["batch", 128], "float32"),
            TensorInfo("pixel_values", ["batch", 3, 64, 64], "float32"),
        ],
        outputs=[TensorInfo("mask_logits", ["batch", 32, 32], "float32")],
    )
    shapes = profile_shapes(record, max_batch=16)
    assert shapes["vis_state"] == [[1, 128], [1, 128], [16, 128]]
    assert shapes["pixel_values"] == [[1, 3, 64, 64], [1, 3, 64, 64], [16, 3, 64, 64]]


# ---------------------------------------------------------------------------- precision policy
def run_policy(tmp_path, builder: FakeBuilder, mask_error: float, measured: list, **kwargs):
    def measure(engine: str) -> float:
        measured.append(engine)
        return mask_error

    return load_head_engines(
        EngineCache(tmp_path),
        key_for=lambda head, precision: make_key(onnx_sha256=head, precision=precision),
        build=lambda head, precision: builder.build(f"{head}.{precision}"),
        deserialize=deserialize,
        mask_fp16_error=measure,
        **kwargs,
    )


def test_mask_decoder_keeps_fp16_when_parity_holds(tmp_path):
    builder, measured = FakeBuilder(), []
    engines = run_policy(tmp_path, builder, MASK_FP16_TOLERANCE / 10, measured)
    assert {precision for _, precision in engines.values()} == {"fp16"}
    assert sorted(builder.builds) == sorted(f"{h}.fp16" for h in HEADS)
    assert len(measured) == 1
    run_policy(tmp_path, builder, MASK_FP16_TOLERANCE / 10, measured)
    assert len(measured) == 1 and len(builder.builds) == len(HEADS)  # verdict cached


def test_mask_decoder_falls_back_to_fp32_when_parity_fails(tmp_path):
    builder, measured = FakeBuilder(), []
    engines = run_policy(tmp_path, builder, MASK_FP16_TOLERANCE * 10, measured)
    assert engines[MASK_DECODER.name][1] == "fp32"
    assert engines[MASK_DECODER.name][0].startswith("fake-engine:mask_decoder.fp32")
    assert all(p == "fp16" for h, (_, p) in engines.items() if h != MASK_DECODER.name)
    again = run_policy(tmp_path, builder, MASK_FP16_TOLERANCE * 10, measured)
    assert again[MASK_DECODER.name][1] == "fp32" and len(measured) == 1
    assert builder.builds.count("mask_decoder.fp32") == 1


def test_rebuilt_mask_engine_is_measured_again(tmp_path):
    builder, measured = FakeBuilder(), []
    run_policy(tmp_path, builder, MASK_FP16_TOLERANCE / 10, measured)
    run_policy(tmp_path, builder, MASK_FP16_TOLERANCE / 10, measured, force_rebuild=True)
    assert len(measured) == 2
    assert builder.builds.count("mask_decoder.fp16") == 2


# ------------------------------------------------------------------ builder calls, faked TensorRT
class FakeTensorRT:
    """The slice of the TensorRT 10 Python API that ``build_engine`` uses, recording each call.

    It checks the call sequence and arguments (FP16 flag only for fp16, the workspace limit, one
    profile with the min/opt/max shapes), not TensorRT itself: that needs a real installation.
    """

    __version__ = "10.0-fake"

    class Logger:
        WARNING = "warning"

        def __init__(self, severity):
            self.severity = severity

    class MemoryPoolType:
        WORKSPACE = "workspace"

    class BuilderFlag:
        FP16 = "fp16"

    def __init__(self, parse_ok: bool = True) -> None:
        self.calls: list[tuple] = []
        self.parse_ok = parse_ok
        fake = self

        class Profile:
            def set_shape(self, name, low, opt, high):
                fake.calls.append(("set_shape", name, low, opt, high))

        class Config:
            def set_memory_pool_limit(self, pool, size):
                fake.calls.append(("pool", pool, size))

            def set_flag(self, flag):
                fake.calls.append(("flag", flag))

            def add_optimization_profile(self, profile):
                fake.calls.append(("profile",))

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                fake.calls.append(("network", flags))
                return "network"

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                return bytearray(b"serialized")

        class OnnxParser:
            num_errors = 1

            def __init__(self, network, logger):
                pass

            def parse(self, data):
                fake.calls.append(("parse", len(data)))
                return fake.parse_ok

            def get_error(self, i):
                return "unsupported op Foo"

        self.Builder = Builder
        self.OnnxParser = OnnxParser


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_build_engine_sets_precision_workspace_and_profile(tmp_path, monkeypatch, precision):
    from pgpt_ros.runtime.backends.tensorrt_heads import build_engine

    fake = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    onnx_path = tmp_path / "head.onnx"
    onnx_path.write_bytes(b"0123456789")
    shapes = {"boxes": [[1, 4], [1, 4], [16, 4]]}
    assert build_engine(onnx_path, shapes, precision, workspace_bytes=1 << 20) == b"serialized"
    assert ("parse", 10) in fake.calls and ("pool", "workspace", 1 << 20) in fake.calls
    assert ("set_shape", "boxes", (1, 4), (1, 4), (16, 4)) in fake.calls
    assert (("flag", "fp16") in fake.calls) == (precision == "fp16")


def test_build_engine_reports_parser_errors(tmp_path, monkeypatch):
    from pgpt_ros.runtime.backends.tensorrt_heads import build_engine

    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT(parse_ok=False))
    onnx_path = tmp_path / "mask_decoder.onnx"
    onnx_path.write_bytes(b"x")
    with pytest.raises(RuntimeError, match="cannot parse mask_decoder.onnx: unsupported op Foo"):
        build_engine(onnx_path, {}, "fp16")


def test_a_stub_tensorrt_package_is_not_taken_for_tensorrt(monkeypatch):
    import types

    from pgpt_ros.runtime.backends.tensorrt_heads import tensorrt_status

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    ok, why = tensorrt_status()
    assert not ok and "no Builder" in why
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT())
    assert tensorrt_status() == (True, "TensorRT 10.0-fake")
