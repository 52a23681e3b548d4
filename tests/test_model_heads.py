"""Shapes and dtypes through every head, and the properties each head promises."""

import pytest
import torch

from pgpt_ros.model.heads import (
    BoxEncoder,
    MLPBoxDecoder,
    QueryBoxDecoder,
    ScoreHead,
    patch_centres,
)
from pgpt_ros.model.mask_decoder import LiteMaskDecoder, rasterize_boxes

D, W, GRID, M = 48, 32, 4, 16


def random_boxes(n: int) -> torch.Tensor:
    corners = torch.rand(n, 2, 2)
    return torch.cat([corners.min(1).values, corners.max(1).values], dim=-1)


@pytest.mark.parametrize("cls", [QueryBoxDecoder, MLPBoxDecoder])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_box_decoders_give_ordered_normalised_boxes(cls, dtype):
    torch.manual_seed(0)
    head = cls(hidden_size=D, width=W, grid=GRID).to(dtype)
    boxes = head(torch.randn(5, D, dtype=dtype) * 10, torch.randn(5, GRID * GRID, D, dtype=dtype))
    assert boxes.shape == (5, 4) and boxes.dtype == dtype
    assert (boxes >= 0).all() and (boxes <= 1).all()
    assert (boxes[:, 2:] >= boxes[:, :2]).all()


def feature_keyed_head(window: int = 0) -> QueryBoxDecoder:
    """A query decoder whose attention follows feature 0 of each patch sharply (no position
    term), with no learned centre offset and a small box."""
    torch.manual_seed(0)
    head = QueryBoxDecoder(hidden_size=D, width=W, grid=GRID, window=window)
    with torch.no_grad():
        head.key_pos.zero_()
        head.query[1].weight.zero_()
        head.query[1].bias.fill_(50.0)
        head.key.weight.zero_()
        head.key.bias.zero_()
        head.key.weight[:, 0] = 1.0  # key = feature 0, large only where it is set after the norm
        head.box.layers[-1].weight.zero_()
        head.box.layers[-1].bias.copy_(torch.tensor([0.0, 0.0, -4.0, -4.0]))  # no offset
    return head


def box_centre(box: torch.Tensor) -> torch.Tensor:
    return (box[0, :2] + box[0, 2:]) / 2


def test_query_decoder_centre_follows_the_attended_patch():
    """With a key that singles out one patch, the box centre lands on that patch."""
    head = feature_keyed_head()
    feats = torch.zeros(1, GRID * GRID, D)
    feats[0, 6, 0] = 5.0  # patch (row 1, col 2)
    state = torch.zeros(1, D)
    with torch.no_grad():
        attn = head.heat_map(state, feats)
        box = head(state, feats)
    assert attn.argmax().item() == 6 and attn.max() > 0.99
    torch.testing.assert_close(box_centre(box), patch_centres(GRID)[6], atol=0.02, rtol=0)


def test_query_decoder_window_takes_the_box_from_the_peak_not_between_two_modes():
    """Attention split between two look-alikes (patches 4 and 7, both in row 1): the mean of
    the whole heat map lies between them, the mean around its peak on the stronger one."""
    feats = torch.zeros(1, GRID * GRID, D)
    feats[0, 4, 0], feats[0, 7, 0] = 5.0, 4.98
    state = torch.zeros(1, D)
    centres = patch_centres(GRID)
    windowed = feature_keyed_head(window=1)
    with torch.no_grad():
        attn = windowed.heat_map(state, feats)
        whole = box_centre(feature_keyed_head(window=0)(state, feats))
        peak = box_centre(windowed(state, feats))
    assert attn[0, 4] > attn[0, 7] > 0.3  # two modes, patch 4 the peak
    assert centres[4, 0] + 0.25 < whole[0] < centres[7, 0] - 0.25  # in the gap
    torch.testing.assert_close(peak, centres[4], atol=0.02, rtol=0)


def test_box_encoder_and_score_head_shapes():
    encoder = BoxEncoder(hidden_size=D, width=W)
    emb = encoder(random_boxes(3))
    assert emb.shape == (3, D) and emb.dtype == torch.float32
    assert (encoder(random_boxes(1)) - encoder(random_boxes(1))).abs().max() > 0
    score = ScoreHead(hidden_size=D, width=W)(torch.randn(3, D), random_boxes(3))
    assert score.shape == (3,) and ((score >= 0) & (score <= 1)).all()


def lite_decoder_and_inputs(
    n: int, pixel_side: int
) -> tuple[LiteMaskDecoder, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded lite decoder and ``n`` random (state, image features, pixels)."""
    torch.manual_seed(0)
    decoder = LiteMaskDecoder(hidden_size=D, width=W, grid=GRID, mask_size=M).eval()
    pixels = torch.randn(n, 3, pixel_side, pixel_side)
    return decoder, torch.randn(n, D), torch.randn(n, GRID * GRID, D), pixels


def test_lite_mask_decoder_shapes_and_box_prior():
    decoder, state, feats, pixels = lite_decoder_and_inputs(2, 32)
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    logits = decoder(state, feats, boxes, pixels)
    assert logits.shape == (2, M, M) and logits.dtype == torch.float32
    # the box is an input: moving it changes the mask
    assert (logits - decoder(state, feats, boxes.flip(0), pixels)).abs().max() > 1e-4
    # batch items are independent (no data-dependent mixing)
    torch.testing.assert_close(decoder(state[:1], feats[:1], boxes[:1], pixels[:1]), logits[:1])


def test_lite_mask_decoder_equals_its_fuse_layers_at_mask_resolution():
    """The decoder mixes the patches on the grid before upsampling; that must be the function
    its layers define: fuse(concat[upsampled patches, pixel skip, box]) at mask resolution."""
    decoder, state, feats, pixels = lite_decoder_and_inputs(3, 40)
    boxes = random_boxes(3)
    with torch.no_grad():
        token = decoder.token_in(state)[:, None]
        grid_box = rasterize_boxes(boxes, GRID).reshape(3, -1, 1)
        patches = decoder.feat_in(feats) + decoder.box_in(grid_box)
        for block in decoder.blocks:
            token, patches = block(token, patches, decoder.pos)
        up = lambda x: torch.nn.functional.interpolate(x, size=(M, M), mode="bilinear")  # noqa: E731
        fmap = up(patches.transpose(1, 2).reshape(3, -1, GRID, GRID))
        x = decoder.fuse(torch.cat([fmap, decoder.pixel_skip(up(pixels)),
                                    rasterize_boxes(boxes, M)[:, None]], dim=1))  # fmt: skip
        expected = torch.einsum("bc,bchw->bhw", decoder.hyper(token[:, 0]), x)
        torch.testing.assert_close(decoder(state, feats, boxes, pixels), expected)


def test_rasterize_boxes_matches_hard_box_away_from_edges():
    boxes = torch.tensor([[0.25, 0.0, 0.75, 0.5]])
    soft = rasterize_boxes(boxes, 8, sharpness=20.0)[0]
    hard = torch.zeros(8, 8)
    hard[0:4, 2:6] = 1.0
    torch.testing.assert_close(soft, hard, atol=1e-3, rtol=0)


def test_conv_stem_keeps_the_token_grid_and_sees_beyond_its_patch():
    from pgpt_ros.model.vision_stem import ConvStem

    stem = ConvStem(width=32, patch_size=8)
    pixels = torch.zeros(1, 3, 64, 64, requires_grad=True)
    out = stem(pixels)
    assert out.shape == (1, 32, 8, 8) and stem.weight.dtype == torch.float32
    out[0, :, 3, 3].sum().backward()  # token (3, 3) covers pixels 24..31
    seen = pixels.grad[0].abs().sum(0).nonzero()
    low, high = int(seen.min()), int(seen.max())
    assert low < 24 and high > 31  # its receptive field is wider than the patch
    assert 24 - low == high - 31  # and centred on it, where the heads place the token
    with pytest.raises(ValueError, match="power-of-two"):
        ConvStem(width=32, patch_size=6)


def test_image_position_tells_identical_patches_apart_by_place():
    from pgpt_ros.model import build_model, preset_config

    torch.manual_seed(0)
    config = preset_config("tiny", image_size=32, vision_width=32, text_width=64,
                                      mask_size=8, image_position=True)  # fmt: skip
    model = build_model(config)
    same = torch.ones(1, config.num_image_tokens, config.hidden_size)
    out = model.image_position(same)
    assert out.shape == same.shape
    assert torch.cdist(out[0], out[0]).add(torch.eye(16)).min() > 1e-3  # 16 distinct tokens
    # encode_image adds it; a model without it is unchanged
    pixels = torch.zeros(1, 3, 32, 32)
    position, model.image_position = model.image_position, None
    plain = model.encode_image(pixels)
    model.image_position = position
    assert not torch.allclose(model.encode_image(pixels), plain)
