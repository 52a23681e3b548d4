"""ONNX export of the heads: pgpt-export on a saved tiny model, graphs checked, ONNX Runtime
against torch on fresh random inputs (the seed is printed on failure)."""

from __future__ import annotations

import json
import logging

import onnx
import onnxruntime
import pytest
import torch

from pgpt_ros.export import cli, onnx_export
from pgpt_ros.export.manifest import HeadRecord, OnnxManifest, sha256_file
from pgpt_ros.export.names import BATCH_AXIS, HEADS, ONNX_MANIFEST, OPSET, sample_shapes
from pgpt_ros.model import (
    PerceptionGPTConfig,
    build_model,
    load_pretrained,
    preset_config,
    save_pretrained,
)
from pgpt_ros.runtime.backends import TorchHeads
from pgpt_ros.runtime.backends.onnxruntime_heads import onnxruntime_heads
from pgpt_ros.runtime.backends.parity import compare_backends, random_head_inputs
from tests.tiny_models import tiny_sam_config

FP32_ABS = 1e-4  # the bar for ONNX Runtime against torch
FP32_REL = 1e-5


def small_config(**overrides) -> PerceptionGPTConfig:
    return preset_config(
        "tiny", vision_width=32, vision_layers=1, text_width=64, text_layers=1, **overrides
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A saved small model exported with the CLI: (model, export directory, manifest). Its box
    decoder takes the box around the heat map's peak, as the embedded model's does (the argmax
    and row gather must export too; the test_heads models cover the whole-map decoder)."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model_dir = tmp_path_factory.mktemp("model")
    save_pretrained(build_model(small_config(box_window=1)), model_dir)
    out = tmp_path_factory.mktemp("onnx")
    assert cli.main([str(model_dir), "--output", str(out)]) == 0
    model = load_pretrained(model_dir)
    return model, out, OnnxManifest.load(out / ONNX_MANIFEST)


def test_manifest_describes_the_graphs(exported):
    model, out, manifest = exported
    shapes = sample_shapes(model.config)
    assert manifest.opset == OPSET and manifest.model_hash == onnx_export.heads_fingerprint(model)
    assert manifest.source_sha256 == sha256_file(manifest.source + "/model.safetensors")
    assert set(manifest.heads) == set(HEADS)
    for name, spec in HEADS.items():
        record = manifest.heads[name]
        assert record.sha256 == sha256_file(out / record.file)
        assert [t.name for t in record.inputs] == list(spec.inputs)
        assert [t.name for t in record.outputs] == list(spec.outputs)
        for tensor in record.inputs + record.outputs:
            assert tensor.shape == [BATCH_AXIS, *shapes[tensor.name]]  # static except batch
            assert tensor.dtype == "float32"


def test_graphs_are_checker_clean_opset_18_with_fused_layernorm(exported):
    _, out, manifest = exported
    for name, record in manifest.heads.items():
        graph = onnx.load(str(out / record.file))
        onnx.checker.check_model(graph, full_check=True)
        assert {o.domain: o.version for o in graph.opset_import}[""] == OPSET
        ops = {node.op_type for node in graph.graph.node}
        if name != "box_encoder":  # the only head without a LayerNorm
            assert "LayerNormalization" in ops, f"{name}: LayerNorm was decomposed"


@pytest.mark.parametrize("batch", [1, 3, 5])
def test_onnxruntime_matches_torch(exported, batch):
    model, out, manifest = exported
    inputs, seed = random_head_inputs(model, batch)
    with torch.no_grad():
        errors = compare_backends(
            TorchHeads(model), onnxruntime_heads(model, out, manifest), inputs
        )
    for output, (abs_err, rel_err) in errors.items():
        assert abs_err <= FP32_ABS and rel_err <= FP32_REL, f"{output} seed {seed}: {errors}"


def test_export_leaves_the_model_untouched(tmp_path):
    torch.manual_seed(1)
    model = build_model(small_config())
    before = {k: v.clone() for k, v in model.box_encoder.state_dict().items()}
    spec = HEADS["box_encoder"]
    args = onnx_export.example_inputs(model, spec.inputs, 2, torch.Generator().manual_seed(0))
    onnx_export.export_head(
        model.box_encoder,
        args,
        tmp_path / spec.onnx_file,
        input_names=spec.inputs,
        output_names=spec.outputs,
    )
    after = model.box_encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.box_encoder.training is False and model.dtype == torch.float32


def test_mlp_box_decoder_keeps_its_unused_image_input(tmp_path):
    """Both box decoders share one graph signature, so the runtimes bind the same names."""
    torch.manual_seed(0)
    model = build_model(small_config(box_decoder="mlp"))
    spec = HEADS["box_decoder"]
    args = onnx_export.example_inputs(model, spec.inputs, 2, torch.Generator().manual_seed(0))
    path = tmp_path / spec.onnx_file
    onnx_export.export_head(
        model.box_decoder, args, path, input_names=spec.inputs, output_names=spec.outputs
    )
    record = HeadRecord.from_onnx(path)
    assert [t.name for t in record.inputs] == ["vis_state", "image_feats"]


@pytest.mark.slow
def test_sam_mask_decoder_exports_and_matches_torch(tmp_path):
    """transformers' SAM as the mask decoder (its ViT included) through the same export path."""
    torch.manual_seed(0)
    model = build_model(small_config(mask_decoder="sam", sam=tiny_sam_config()))
    spec = HEADS["mask_decoder"]
    generator = torch.Generator().manual_seed(0)
    path = tmp_path / spec.onnx_file
    onnx_export.export_head(
        model.mask_decoder,
        onnx_export.example_inputs(model, spec.inputs, 2, generator),
        path,
        input_names=spec.inputs,
        output_names=spec.outputs,
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, seed = random_head_inputs(model, 3)
    with torch.no_grad():
        expected = model.mask_decoder(*(inputs[n] for n in spec.inputs))
    (got,) = session.run(None, {n: inputs[n].numpy() for n in spec.inputs})
    error = float((torch.from_numpy(got) - expected).abs().max())
    assert error <= FP32_ABS, f"seed {seed}: {error}"


def test_text_coordinate_model_has_nothing_to_export(tmp_path):
    model = build_model(small_config(head="text_coords"))
    with pytest.raises(ValueError, match='only "perception" models'):
        onnx_export.export_heads(model, tmp_path)


def test_fingerprint_follows_the_head_weights_and_code(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = build_model(small_config())
    first = onnx_export.heads_fingerprint(model)
    assert onnx_export.heads_fingerprint(model) == first
    files = onnx_export._source_files(model)
    assert any(f.name == "mask_decoder.py" and f.parent.name == "model" for f in files)
    with torch.no_grad():
        model.score_head.mlp.layers[0].bias[0] += 1e-3
    second = onnx_export.heads_fingerprint(model)
    assert second != first
    edited = tmp_path / "heads.py"  # the same weights with edited head code: a new graph
    edited.write_text("# edited\n")
    monkeypatch.setattr(onnx_export, "_source_files", lambda model: [*files, edited])
    assert onnx_export.heads_fingerprint(model) != second


def test_ensure_onnx_reuses_a_good_export_and_redoes_a_bad_one(
    exported, tmp_path, monkeypatch, caplog
):
    """Decision logic only: the export itself is replaced by copying the module's export."""
    model, out, _ = exported
    target = onnx_export.export_dir(model, tmp_path)
    calls = []

    def fake_export(model, directory, **kwargs):
        calls.append(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for item in out.iterdir():
            (directory / item.name).write_bytes(item.read_bytes())
        manifest = OnnxManifest.load(directory / ONNX_MANIFEST)
        manifest.model_hash = onnx_export.heads_fingerprint(model)
        manifest.save(directory / ONNX_MANIFEST)
        return manifest

    monkeypatch.setattr(onnx_export, "export_heads", fake_export)
    with caplog.at_level(logging.INFO, logger="pgpt_ros.export.onnx_export"):
        onnx_export.ensure_onnx(model, tmp_path)
        assert len(calls) == 1 and calls[0] == target
        onnx_export.ensure_onnx(model, tmp_path)
        assert len(calls) == 1, "a valid export must be reused"
        (target / "mask_decoder.onnx").write_bytes(b"truncated")
        onnx_export.ensure_onnx(model, tmp_path)
        assert len(calls) == 2 and "mask_decoder missing or corrupt" in caplog.text
        data = json.loads((target / ONNX_MANIFEST).read_text())
        data["model_hash"] = "0" * 64
        (target / ONNX_MANIFEST).write_text(json.dumps(data))
        onnx_export.ensure_onnx(model, tmp_path)
        assert len(calls) == 3 and "from another model" in caplog.text
        (target / ONNX_MANIFEST).write_text("{")
        onnx_export.ensure_onnx(model, tmp_path)
        assert len(calls) == 4


def test_cli_reports_a_missing_model_dir(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nope")]) == 2
    assert "holds no PerceptionGPT" in capsys.readouterr().err
