"""The training objective: gradients reach the heads, LoRA and the <vis> rows, and nothing that
is frozen; loss weights; the training-only patch heads."""

import numpy as np
import pytest
import torch

from pgpt_ros.data.collate import Collator
from pgpt_ros.data.sample import Sample
from pgpt_ros.model import add_lora, build_model, preset_config
from pgpt_ros.model.parameters import freeze_vision_tower
from pgpt_ros.training.objective import LossWeights, PerceptionObjective


def scene(num_targets: int) -> Sample:
    image = np.zeros((32, 48, 3), dtype=np.uint8)
    masks = np.zeros((num_targets, 32, 48), dtype=bool)
    boxes = []
    for i in range(num_targets):
        x = 4 + 14 * i
        image[8:20, x : x + 10] = (255, 0, 0)
        masks[i, 8:20, x : x + 10] = True
        boxes.append([x, 8, x + 10, 20])
    boxes = np.array(boxes, dtype=np.float32).reshape(num_targets, 4)
    return Sample(
        image, "find the red squares", ["red square"] * num_targets, boxes, masks, "multi"
    )


@pytest.fixture()
def model():
    torch.manual_seed(0)
    config = preset_config(
        "tiny", image_size=32, vision_width=32, text_width=64, head_width=32, mask_size=16
    )
    return build_model(config).train()


def collate(samples, model):
    return Collator(model.tokenizer, model.config)(samples)


def grads_by_name(model, batch, weights: LossWeights | None = None):
    """The objective's loss on ``batch`` and the model's gradients by parameter name."""
    objective = PerceptionObjective(model, weights)
    objective.zero_grad()
    out = objective(batch)
    out.loss.backward()
    return out, {n: p.grad for n, p in model.named_parameters()}


def nonzero(grad) -> bool:
    return grad is not None and grad.abs().sum().item() > 0


def test_lora_training_reaches_heads_lora_and_vis_rows_only(model):
    add_lora(model, r=4, alpha=8, dropout=0.0)
    batch = collate([scene(2), scene(0), scene(1)], model)
    out, grads = grads_by_name(model, batch)
    assert set(out.losses) == {"lm", "l1", "giou", "bce", "dice", "iou", "heat"}
    assert all(torch.isfinite(v) for v in out.losses.values())
    for prefix in ("box_decoder.", "box_encoder.", "mask_decoder.", "score_head."):
        assert any(nonzero(g) for n, g in grads.items() if n.startswith(prefix)), prefix
    assert any(nonzero(g) for n, g in grads.items() if "lora_B" in n)
    assert any(nonzero(g) for n, g in grads.items() if "multi_modal_projector" in n)
    deltas = {n: g for n, g in grads.items() if "trainable_tokens_delta" in n}
    assert len(deltas) == 2 and all(nonzero(g) for g in deltas.values())  # input and LM-head rows
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any("vision_tower" in n for n in frozen)
    assert any("embed_tokens" in n and "base_layer" in n for n in frozen)
    assert all(grads[n] is None for n in frozen)


def test_full_training_with_frozen_vision_tower(model):
    freeze_vision_tower(model)
    batch = collate([scene(1), scene(2)], model)
    _, grads = grads_by_name(model, batch)
    vis = model.config.vis_token_id
    embed_grad = model.backbone.get_input_embeddings().weight.grad
    assert embed_grad[vis].abs().sum() > 0  # the <vis> input embedding learns
    assert model.backbone.lm_head.weight.grad[vis].abs().sum() > 0
    assert all(g is None for n, g in grads.items() if "vision_tower" in n)
    assert any(nonzero(g) for n, g in grads.items() if "language_model.layers" in n)


def test_no_target_batch_trains_the_lm_only(model):
    batch = collate([scene(0), scene(0)], model)
    out, grads = grads_by_name(model, batch)
    assert out.losses["l1"].item() == 0.0 and out.boxes is None
    assert nonzero(model.backbone.lm_head.weight.grad)
    assert not any(nonzero(g) for n, g in grads.items() if n.startswith("box_decoder."))


def test_loss_weights_scale_the_total(model):
    batch = collate([scene(1)], model)
    objective = PerceptionObjective(model)
    out = objective(batch)
    weights = objective.weights
    expected = sum(getattr(weights, k) * v for k, v in out.losses.items())
    torch.testing.assert_close(out.loss, expected)
    giou_weight = weights.giou
    weights.giou = 0.0
    torch.testing.assert_close(out.loss - objective(batch).loss, giou_weight * out.losses["giou"])
    with pytest.raises(ValueError, match="unknown loss weights"):
        LossWeights.from_dict({"gio": 1.0})


def test_heat_map_loss_trains_the_query_and_keys_only(model):
    batch = collate([scene(2)], model)
    weights = LossWeights(**{name: 0.0 for name in vars(LossWeights())})
    weights.heat = 1.0
    out, grads = grads_by_name(model, batch, weights)
    assert out.losses["heat"].item() > 0 and out.loss.item() == out.losses["heat"].item()
    for name in ("box_decoder.query.1.weight", "box_decoder.key.weight"):
        assert nonzero(grads[name]), name
    assert nonzero(grads["backbone.model.language_model.layers.0.self_attn.q_proj.weight"])
    # the heat map decides where, not how big: the size MLP and the mask decoder get nothing
    assert not nonzero(grads["box_decoder.box.layers.0.weight"])
    assert not any(nonzero(g) for n, g in grads.items() if n.startswith("mask_decoder."))


def test_patch_heads_train_only_with_dense_maps():
    from pgpt_ros.data.shapesref import NUM_CLASSES, ShapesRef

    torch.manual_seed(0)
    config = preset_config("tiny", image_size=32, vision_width=32, text_width=64, mask_size=8)
    model = build_model(config).train()
    objective = PerceptionObjective(model, patch_classes=NUM_CLASSES, patch_geometry=True)
    collate = Collator(
        model.tokenizer, model.config, patch_classes=NUM_CLASSES, patch_geometry=True
    )
    samples = [ShapesRef("val", image_size=32, length=4)[i] for i in range(4)]
    batch = collate(samples)
    assert batch["patch_targets"].shape == (4, config.num_image_tokens, NUM_CLASSES)
    torch.testing.assert_close(batch["patch_targets"].sum(-1), torch.ones(4, 16))
    out = objective(batch)
    out.loss.backward()
    classifier, geometry = objective.patch_classifier, objective.patch_geometry
    assert out.losses["patch"] > 0 and classifier.linear.weight.grad.abs().sum() > 0
    assert batch["patch_geometry"].shape == (4, config.num_image_tokens, 4)
    assert out.losses["geometry"] > 0 and geometry.linear.weight.grad.abs().sum() > 0
    for s in samples:
        s.class_map = s.instance_map = None  # RefCOCO-like data: no dense labels, no patch losses
    assert not {"patch", "geometry"} & set(objective(collate(samples)).losses)
    # the heads belong to the objective, never to the model a checkpoint saves
    assert not any(n.startswith("patch_") for n in model.state_dict())
