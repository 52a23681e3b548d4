"""Head backends: the interface, backend selection, and parity of every available backend with
torch on fresh random inputs (seed in the failure message).

Bounds: float32 backends 1e-5 relative; float16 (torch CUDA fp16, TensorRT) 1e-2 relative.
TensorRT and CUDA tests are real tests that skip, with the reason, where those are absent.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from pgpt_ros.export import onnx_export
from pgpt_ros.model import build_model, preset_config
from pgpt_ros.runtime import backends
from pgpt_ros.runtime.backends import (
    HeadOutputs,
    TorchHeads,
    default_engine_dir,
    select_head_backend,
)
from pgpt_ros.runtime.backends.onnxruntime_heads import ort_providers
from pgpt_ros.runtime.backends.parity import compare_backends, random_head_inputs, relative_error
from pgpt_ros.runtime.backends.tensorrt_heads import tensorrt_status

FP32_REL = 1e-5
FP16_REL = 1e-2
TRT_OK, TRT_WHY = tensorrt_status()
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device here")
needs_tensorrt = pytest.mark.skipif(not (TRT_OK and CUDA), reason=f"{TRT_WHY}; CUDA {CUDA}")


def small_model(**overrides):
    torch.manual_seed(0)
    config = preset_config(
        "tiny", vision_width=32, vision_layers=1, text_width=64, text_layers=1, **overrides
    )
    return build_model(config)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return small_model()


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


@pytest.fixture(scope="module")
def ort_backend(model, engine_dir):
    return select_head_backend("onnxruntime", model, engine_dir=engine_dir)


def assert_parity(reference, candidate, model, batch: int, bound: float) -> None:
    inputs, seed = random_head_inputs(model, batch)
    with torch.no_grad():
        errors = compare_backends(reference, candidate, inputs)
    worst = {k: rel for k, (_, rel) in errors.items()}
    assert max(worst.values()) <= bound, f"{candidate.name} seed {seed}: {worst}"


def test_torch_backend_is_the_models_own_heads(model):
    inputs, _ = random_head_inputs(model, 2)
    backend = TorchHeads(model)
    with torch.no_grad():
        out = backend.decode(inputs["vis_state"], inputs["image_feats"], inputs["pixel_values"])
        boxes, masks, iou = model.decode_vis(
            inputs["vis_state"], inputs["image_feats"], inputs["pixel_values"]
        )
        assert torch.equal(backend.encode_box(inputs["boxes"]), model.box_encoder(inputs["boxes"]))
    assert isinstance(out, HeadOutputs)
    assert torch.equal(out.boxes, boxes) and torch.equal(out.mask_logits, masks)
    assert torch.equal(out.iou, iou)
    assert (backend.name, backend.precision) == ("torch", "fp32")


@pytest.mark.parametrize("batch", [1, 4])
def test_onnxruntime_matches_torch(model, ort_backend, batch):
    assert (ort_backend.name, ort_backend.precision) == ("onnxruntime", "fp32")
    assert_parity(TorchHeads(model), ort_backend, model, batch, FP32_REL)


def test_more_objects_than_the_graph_batch_run_in_chunks(model, ort_backend):
    k = ort_backend.max_batch + 3
    inputs, seed = random_head_inputs(model, k)
    with torch.no_grad():
        out = ort_backend.decode(inputs["vis_state"], inputs["image_feats"], inputs["pixel_values"])
        ref = TorchHeads(model).decode(
            inputs["vis_state"], inputs["image_feats"], inputs["pixel_values"]
        )
    m = model.config.mask_size
    assert out.boxes.shape == (k, 4) and out.mask_logits.shape == (k, m, m)
    assert out.iou.shape == (k,)
    assert torch.allclose(out.mask_logits, ref.mask_logits, atol=1e-4), f"seed {seed}"


def test_no_objects_give_empty_outputs(model, ort_backend):
    inputs, _ = random_head_inputs(model, 0)
    states, feats, pixels = (inputs[k] for k in ("vis_state", "image_feats", "pixel_values"))
    with torch.no_grad():
        out = ort_backend.decode(states, feats, pixels)
        embedding = ort_backend.encode_box(inputs["boxes"])
    m = model.config.mask_size
    assert out.boxes.shape == (0, 4) and out.mask_logits.shape == (0, m, m)
    assert out.iou.shape == (0,) and embedding.shape == (0, model.config.hidden_size)


class ForcedAnswer:
    """A logits processor that makes the model answer ``tokens`` (the last one repeated)."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens = tokens
        self.prompt_length: int | None = None

    def __call__(self, ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        self.prompt_length = self.prompt_length or ids.shape[1]
        step = min(ids.shape[1] - self.prompt_length, len(self.tokens) - 1)
        forced = torch.full_like(logits, -1e9)
        forced[:, self.tokens[step]] = 0
        return forced


def test_the_decoding_loop_answers_the_same_with_onnxruntime_heads(model, ort_backend):
    """Through the runtime's loop: an answer forced to ``red <vis>, red <vis> EOS``, so the
    second object is decoded after the first box came back through ``encode_box``."""
    from pgpt_ros.runtime import Perceiver

    cfg = model.config
    image = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    red, comma = model.tokenizer(" red, red", add_special_tokens=False)["input_ids"][:2]
    answers = {}
    for backend in (TorchHeads(model), ort_backend):
        force = ForcedAnswer([red, cfg.vis_token_id, comma, red, cfg.vis_token_id,
                              cfg.eos_token_id])  # fmt: skip
        perceiver = Perceiver(model, backend)
        perceiver.set_image(image)
        answers[backend.name] = perceiver.answer("all the shapes", logits_processor=force)
    ref, out = answers["torch"].detections, answers["onnxruntime"].detections
    assert len(ref) == len(out) == 2
    for r, o in zip(ref, out, strict=True):
        np.testing.assert_allclose(o.box, r.box, atol=1e-5)
        np.testing.assert_allclose(o.mask_logits, r.mask_logits, atol=1e-4)
        assert abs(o.score - r.score) < 1e-5


def test_auto_logs_its_choice_once_with_the_reason(model, engine_dir, caplog):
    with caplog.at_level(logging.INFO, logger="pgpt_ros.runtime.backends"):
        backend = select_head_backend("auto", model, engine_dir=engine_dir)
    choices = [r.getMessage() for r in caplog.records if "head backend auto" in r.getMessage()]
    assert len(choices) == 1
    expected = "tensorrt" if TRT_OK and model.device.type == "cuda" else "onnxruntime"
    assert backend.name == expected and f"-> {expected}" in choices[0]
    if not TRT_OK:
        assert "tensorrt is not importable" in choices[0]


def test_auto_falls_back_to_torch_when_the_export_fails(model, tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(backends, "ensure_onnx", broken)
    with caplog.at_level(logging.WARNING, logger="pgpt_ros.runtime.backends"):
        backend = select_head_backend("auto", model, engine_dir=tmp_path)
    assert backend.name == "torch" and "disk full" in caplog.text
    with pytest.raises(RuntimeError, match="disk full"):
        select_head_backend("onnxruntime", model, engine_dir=tmp_path)


def test_bad_names_and_models_without_heads_are_clear_errors(model, tmp_path):
    with pytest.raises(ValueError, match="head_backend must be one of"):
        select_head_backend("tensorrt-fp8", model)
    baseline = small_model(head="text_coords")
    assert select_head_backend("auto", baseline, engine_dir=tmp_path).name == "torch"
    with pytest.raises(ValueError, match="perception"):
        select_head_backend("onnxruntime", baseline, engine_dir=tmp_path)


@pytest.mark.skipif(TRT_OK, reason="TensorRT is installed here")
def test_tensorrt_without_tensorrt_says_why(model, tmp_path):
    with pytest.raises(RuntimeError, match="tensorrt is not importable"):
        select_head_backend("tensorrt", model, engine_dir=tmp_path)


def test_tensorrt_needs_a_cuda_model(model, tmp_path, monkeypatch):
    """The device check runs before any TensorRT call, so it is tested with TensorRT faked."""
    monkeypatch.setattr(backends, "tensorrt_status", lambda: (True, "TensorRT 10 (faked)"))
    with pytest.raises(RuntimeError, match="needs the model on a CUDA device"):
        select_head_backend("tensorrt", model, engine_dir=tmp_path)


def test_onnxruntime_tensorrt_provider_gets_the_cache_and_batch_profile(tmp_path, monkeypatch):
    """Provider options only (no session is made), so it runs without a GPU build of ORT."""
    import onnxruntime

    from pgpt_ros.export.manifest import HeadRecord, TensorInfo

    available = ["TensorrtExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: available)
    record = HeadRecord(
        file="box_decoder.onnx",
        sha256="0" * 64,
        inputs=[
            TensorInfo("vis_state", ["batch", 64], "float32"),
            TensorInfo("image_feats", ["batch", 64, 64], "float32"),
        ],
        outputs=[TensorInfo("boxes", ["batch", 4], "float32")],
    )
    providers = ort_providers(torch.device("cuda", 1), tmp_path / "trt", record, 16)
    (name, options), cpu = providers
    assert (name, cpu) == ("TensorrtExecutionProvider", "CPUExecutionProvider")
    assert options["device_id"] == 1 and options["trt_engine_cache_enable"] is True
    assert options["trt_engine_cache_path"] == str(tmp_path / "trt")
    assert options["trt_profile_min_shapes"] == "vis_state:1x64,image_feats:1x64x64"
    assert options["trt_profile_max_shapes"] == "vis_state:16x64,image_feats:16x64x64"
    assert ort_providers(torch.device("cpu"), tmp_path, record, 16) == ["CPUExecutionProvider"]


# ------------------------------------------------------------------------------ GPU-only tests
@needs_cuda
def test_torch_cuda_fp16_matches_fp32_cpu(model):
    gpu = small_model().to("cuda", torch.float16)
    inputs, seed = random_head_inputs(model, 4)
    with torch.no_grad():
        ref = TorchHeads(model).decode(
            inputs["vis_state"], inputs["image_feats"], inputs["pixel_values"]
        )
        out = TorchHeads(gpu).decode(
            *(
                inputs[k].to("cuda", torch.float16)
                for k in ("vis_state", "image_feats", "pixel_values")
            )
        )
    for name in ("boxes", "mask_logits", "iou"):
        rel = relative_error(getattr(out, name).cpu(), getattr(ref, name))
        assert rel <= FP16_REL, f"{name} seed {seed}: {rel}"


@needs_cuda
def test_onnxruntime_on_a_cuda_model(tmp_path):
    gpu = small_model().to("cuda")
    backend = select_head_backend("onnxruntime", gpu, engine_dir=tmp_path)
    inputs, _ = random_head_inputs(gpu, 2)
    out = backend.decode(inputs["vis_state"], inputs["image_feats"], inputs["pixel_values"])
    assert out.boxes.device.type == "cuda"
    assert_parity(TorchHeads(gpu), backend, gpu, 3, FP32_REL)


@needs_tensorrt
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_tensorrt_matches_torch(tmp_path, dtype, caplog):
    gpu = small_model().to("cuda", dtype)
    with caplog.at_level(logging.INFO):
        backend = select_head_backend("tensorrt", gpu, engine_dir=tmp_path)
    assert backend.name == "tensorrt" and backend.precision in ("fp16", "mixed")
    reference = TorchHeads(small_model().to("cuda"))
    assert_parity(reference, backend, gpu, 3, FP16_REL)
    again = select_head_backend("tensorrt", gpu, engine_dir=tmp_path)
    assert "loaded from the cache" in caplog.text and again.precision == backend.precision


@needs_tensorrt
def test_tensorrt_rebuilds_a_corrupt_engine(tmp_path, caplog):
    gpu = small_model().to("cuda")
    select_head_backend("tensorrt", gpu, engine_dir=tmp_path)
    directory = onnx_export.export_dir(gpu, tmp_path)
    (directory / "box_decoder.fp16.engine").write_bytes(b"\x00" * 64)
    with caplog.at_level(logging.INFO):
        backend = select_head_backend("tensorrt", gpu, engine_dir=tmp_path)
    assert "corrupt" in caplog.text
    assert_parity(TorchHeads(gpu), backend, gpu, 2, FP16_REL)


# --------------------------------------------------------------------------------- pgpt-bench
def test_bench_cli_dispatch_and_a_tiny_heads_run(tmp_path, capsys):
    import json

    from pgpt_ros.bench import cli

    assert cli.main([]) == 2 and cli.main(["nope"]) == 2
    argv = ["heads", "--device", "cpu", "--backends", "torch", "tensorrt", "--batches", "1", "2"]
    argv += [
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--engine-dir",
        str(tmp_path),
        "--out",
        str(tmp_path),
    ]
    argv += ["--preset", "tiny"]
    assert cli.main(argv) == 0
    result = json.loads((tmp_path / "heads-tiny-cpu.json").read_text())
    assert [(r["backend"], r["batch"]) for r in result["results"]] == [("torch", 1), ("torch", 2)]
    assert all(r["decode"]["median_ms"] > 0 for r in result["results"])
    assert [r["backend"] for r in result["not_run"]] == ["tensorrt"]  # a CPU model never has it
    assert "| torch | fp32 | 2 |" in capsys.readouterr().out


def test_the_default_cache_is_per_user_never_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("PGPT_ROS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_engine_dir() == tmp_path / "xdg" / "pgpt_ros" / "engines"
    monkeypatch.setenv("PGPT_ROS_CACHE", str(tmp_path / "mine"))
    assert default_engine_dir() == tmp_path / "mine"
