"""ShapesRef's camera variation: canvases of every aspect, shades, backgrounds, rotated shapes,
camera effects, look-alikes and the same scene at several aspects, with exact ground truth."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
from PIL import Image, ImageCms

from pgpt_ros.data.shapesref import (
    AREA_RATIO,
    BACKGROUNDS,
    COLOURS,
    POSITION_MARGIN,
    SHADES,
    SHAPES,
    AspectSet,
    SceneConfig,
    ShapesRef,
    canvas_size,
    commands_for,
    mask_to_box,
    relation_holds,
)
from pgpt_ros.data.shapesref.backgrounds import DEFAULT_BACKGROUNDS, background
from pgpt_ros.data.shapesref.camera import CameraEffects
from pgpt_ros.data.shapesref.drawing import shape_mask
from pgpt_ros.data.shapesref.vocabulary import MUTED_CHROMA, hsv_rgb

CAMERA = SceneConfig.preset("camera")


def test_presets_and_fields_are_validated():
    assert SceneConfig.preset("default") == SceneConfig()
    assert SceneConfig.preset("camera", max_shapes=5).max_shapes == 5
    for bad in ({"aspects": ("16x9",)}, {"blur": 1.5}, {"phrasing": {"poetry": 1.0}},
                {"max_shapes": 9}, {"long_lists": 0.0}, {"backgrounds": ("marble",)}):  # fmt: skip
        with pytest.raises(ValueError):
            SceneConfig(**bad)
    with pytest.raises(ValueError, match="preset"):
        SceneConfig.preset("cinema")


def test_a_varied_dataset_pickles_for_loader_workers():
    dataset = ShapesRef("train", 64, 20, config=SceneConfig.preset("varied"))
    copy = pickle.loads(pickle.dumps(dataset))
    for i in (0, 7):
        assert copy[i].command == dataset[i].command
        np.testing.assert_array_equal(copy[i].image, dataset[i].image)


def test_canvas_keeps_the_long_side():
    assert canvas_size("16:9", 64) == (64, 36)
    assert canvas_size("3:4", 64) == (48, 64)
    assert canvas_size("1:1", 96) == (96, 96)
    assert canvas_size("9:16", 128) == (72, 128)


def test_every_aspect_is_drawn_with_its_long_side_and_a_tuple_is_exact():
    dataset = ShapesRef("train", 64, 200, config=CAMERA)
    shapes = {dataset[i].image.shape[:2] for i in range(60)}
    assert shapes == {(64, 64), (48, 64), (64, 48), (36, 64), (64, 36)}
    exact = ShapesRef("train", (80, 60), 10, config=CAMERA)
    assert {exact[i].image.shape for i in range(10)} == {(60, 80, 3)}


def test_a_sample_is_a_pure_function_of_split_index_seed_and_canvas():
    config = SceneConfig.preset("varied")
    for size in (64, (100, 60)):
        a, b = ShapesRef("val", size, 50, config=config), ShapesRef("val", size, 50, config=config)
        for i in (0, 3, 17):
            x, y = a[i], b[i]
            assert x.command == y.command and x.phrases == y.phrases
            np.testing.assert_array_equal(x.image, y.image)
            np.testing.assert_array_equal(x.masks, y.masks)
    base = ShapesRef("val", 64, 50, config=config)
    other_seed = ShapesRef("val", 64, 50, config=config, seed=1)
    other_split = ShapesRef("test", 64, 50, config=config)
    for i in range(10):
        assert base[i].image.shape != other_seed[i].image.shape or not np.array_equal(base[i].image, other_seed[i].image)  # fmt: skip
        assert base[i].image.shape != other_split[i].image.shape or not np.array_equal(base[i].image, other_split[i].image)  # fmt: skip


@pytest.mark.parametrize("size", [(64, 64), (64, 36), (48, 64), (320, 180)])
def test_rotated_shapes_have_exact_visible_masks_and_tight_boxes(size):
    width, height = size
    angles = []
    for seed in range(40):
        scene = ShapesRef.scene(seed, width, height, CAMERA)
        drawn = [shape_mask(o.shape, o.centre, o.radius, width, height, o.angle) for o in scene.objects]  # fmt: skip
        for i, o in enumerate(scene.objects):
            above = np.zeros((height, width), bool)
            for later in drawn[i + 1 :]:
                above |= later
            # the visible mask is the geometry minus what lies on top: occlusion honoured
            np.testing.assert_array_equal(o.mask, drawn[i] & ~above)
            assert o.mask.any() and (o.mask.sum() >= 0.5 * drawn[i].sum())
            np.testing.assert_array_equal(o.box, mask_to_box(o.mask))
            assert o.shape != "circle" or o.angle == 0.0
            angles.append(o.angle)
    turned = [a for a in angles if a % (np.pi / 2) > 0.05]
    assert len(turned) > len(angles) / 3  # shapes really are turned


def test_camera_effects_change_pixels_not_the_geometry():
    image = np.full((64, 64, 3), 120, np.uint8)
    image[20:40, 20:40] = (215, 45, 40)
    rng = np.random.default_rng(0)
    for effects in (CameraEffects(blur_sigma=0.015), CameraEffects(noise_sigma=8.0, noise_colour=0.3),
                    CameraEffects(jpeg_quality=30)):  # fmt: skip
        out = effects.apply(rng, image)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert not np.array_equal(out, image)
        assert np.abs(out[28:32, 28:32].astype(int) - (215, 45, 40)).mean() < 25  # still red
    assert CameraEffects.draw(rng, 0.0, 0.0, 0.0) == CameraEffects()
    blurred = SceneConfig(blur=1.0, sensor_noise=1.0, jpeg=1.0)
    sharp_scene, blurred_scene = ShapesRef.scene(3, 96, 96), ShapesRef.scene(3, 96, 96, blurred)
    assert [o.name for o in sharp_scene.objects] == [o.name for o in blurred_scene.objects]
    for a, b in zip(sharp_scene.objects, blurred_scene.objects, strict=True):
        np.testing.assert_array_equal(a.mask, b.mask)  # from the geometry, not the pixels


_TO_LAB = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")  # fmt: skip


def _lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) sRGB 0..255 -> (N, 3) CIELAB (D65), through littlecms."""
    pixels = np.clip(np.rint(rgb), 0, 255).astype(np.uint8).reshape(1, -1, 3)
    out = np.asarray(ImageCms.applyTransform(Image.fromarray(pixels), _TO_LAB))[0]
    return np.concatenate([out[:, :1] * (100 / 255), out[:, 1:].view(np.int8)], axis=1)


def _shade_grid(name: str) -> np.ndarray:
    r = SHADES[name]
    return np.array([hsv_rgb(h, s, v) for h in np.linspace(*r.hue, 7)
                     for s in np.linspace(*r.saturation, 4) for v in np.linspace(*r.value, 4)])  # fmt: skip


def test_every_shade_is_nearer_its_own_colour_name_than_any_other():
    """CIELAB distance (Delta E 1976): each shade is at least 10 nearer its own name's base
    colour than any other name's, and two names' shades are never within 25 of each other."""
    prototypes = {n: _lab(np.array([c], np.float32))[0] for n, c in COLOURS.items()}
    grids = {n: _lab(_shade_grid(n)) for n in COLOURS}
    for name, lab in grids.items():
        own = np.linalg.norm(lab - prototypes[name], axis=1)
        other = np.min([np.linalg.norm(lab - p, axis=1) for n, p in prototypes.items() if n != name], axis=0)  # fmt: skip
        assert (other - own).min() >= 10, name
        assert (np.ptp(_shade_grid(name), axis=1) > 1.5 * MUTED_CHROMA).all()  # never muted
    for a, b in itertools.combinations(COLOURS, 2):
        gap = np.linalg.norm(grids[a][:, None] - grids[b][None], axis=-1).min()
        assert gap >= 25, (a, b, gap)


def test_painted_shades_name_their_colour():
    config = SceneConfig.preset("camera", blur=0.0, sensor_noise=0.0, jpeg=0.0)
    prototypes = {n: _lab(np.array([c], np.float32))[0] for n, c in COLOURS.items()}
    checked = 0
    for seed in range(30):
        scene = ShapesRef.scene(seed, 128, 128, config)
        for o in scene.objects:
            mean = scene.image[o.mask].astype(np.float32).mean(axis=0)
            lab = _lab(mean[None])[0]
            nearest = min(prototypes, key=lambda n: np.linalg.norm(prototypes[n] - lab))
            assert nearest == o.colour
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("kind", [b for b in BACKGROUNDS if b not in DEFAULT_BACKGROUNDS])
def test_new_backgrounds_are_muted_and_draw_the_same_numbers_at_every_size(kind):
    for seed in range(8):
        states = []
        for width, height in ((64, 64), (64, 36), (48, 64), (320, 240)):
            rng = np.random.default_rng(seed)
            image = np.clip(np.rint(background(rng, kind, width, height)), 0, 255)
            assert image.shape == (height, width, 3)
            assert np.ptp(image, axis=-1).max() <= MUTED_CHROMA + 1, (kind, seed)
            states.append(rng.integers(1 << 30))
        assert len(set(states)) == 1  # the next draw is the same: size-independent


def test_more_shapes_more_lookalikes_and_longer_lists():
    def stats(config: SceneConfig) -> tuple[int, float, float]:
        dataset = ShapesRef("val", 64, 300, kinds={"multi": 1.0}, config=config)
        samples = [dataset[i] for i in range(300)]
        names = [[o["name"] for o in s.meta["objects"]] for s in samples]
        repeated = np.mean([len(set(n)) < len(n) for n in names])
        long = np.mean([s.num_targets >= 3 for s in samples])
        return max(len(n) for n in names), repeated, long

    most, repeated, long = stats(SceneConfig())
    most_c, repeated_c, long_c = stats(CAMERA)
    assert most <= 6 and most_c == 8
    assert repeated_c > repeated + 0.15
    assert long_c > long + 0.15


def _named(objects: list[dict], words: list[str]) -> list[int]:
    colour = next((w for w in words if w in COLOURS), None)
    shape = next((w.rstrip("s") for w in words if w.rstrip("s") in SHAPES), None)
    return [i for i, o in enumerate(objects)
            if (colour is None or o["colour"] == colour) and (shape is None or o["shape"] == shape)]  # fmt: skip


def _check_relation_or_extreme(sample) -> None:
    """The command holds, by the generator's margins, on this canvas's reference geometry."""
    objects, (target,) = sample.meta["objects"], sample.meta["targets"]
    centre = [tuple(o["ref_centre"]) for o in objects]
    words = sample.command.rstrip("?").split()
    if sample.kind == "relation":
        relation, reference = sample.meta["relation"], sample.meta["reference"]
        before = sample.command.split(f" {relation} the ")[0].split()
        named = [i for i in _named(objects, before) if i != reference]
        assert target in named and len(named) >= 2
        assert relation_holds(relation, centre[target], centre[reference])
        for i in named:
            if i != target:
                assert not relation_holds(relation, centre[i], centre[reference], POSITION_MARGIN / 2, 0.7)  # fmt: skip
        return
    at = next(k for k, w in enumerate(words) if w.endswith(("est", "most")))
    group = _named(objects, words[at + 1 :])
    assert target in group and len(group) >= 2
    for i in group:
        if i == target:
            continue
        if words[at] in ("largest", "smallest"):
            big, small = (target, i) if words[at] == "largest" else (i, target)
            assert objects[big]["ref_area"] >= AREA_RATIO * objects[small]["ref_area"]
        else:
            axis = 0 if words[at] in ("leftmost", "rightmost") else 1
            sign = -1 if words[at] in ("leftmost", "topmost") else 1
            assert sign * (centre[target][axis] - centre[i][axis]) >= POSITION_MARGIN - 1e-6


@pytest.mark.parametrize("config", [SceneConfig(), CAMERA], ids=["default", "camera"])
def test_aspect_set_keeps_scene_command_and_targets_at_every_aspect(config):
    aspects = ("1:1", "16:9", "3:4", "9:16")
    groups = AspectSet("test", 96, aspects, 50, config=config)
    kinds = set()
    for i in range(50):
        group = groups[i]
        assert tuple(group) == aspects
        first = group["1:1"]
        kinds.add(first.kind)
        for aspect, sample in group.items():
            width, height = canvas_size(aspect, 96)
            assert sample.image.shape == (height, width, 3)
            assert sample.command == first.command and sample.phrases == first.phrases
            assert sample.meta["targets"] == first.meta["targets"]
            assert [o["name"] for o in sample.meta["objects"]] == [o["name"] for o in first.meta["objects"]]  # fmt: skip
            if sample.kind in ("relation", "extreme"):
                _check_relation_or_extreme(sample)
    assert kinds == {"attribute", "relation", "extreme", "multi", "absent"}


def test_demo_scene_with_the_camera_preset_supports_commands():
    scene = ShapesRef.scene(5, 640, 480, CAMERA)
    assert scene.image.shape == (480, 640, 3)
    assert {e.kind for e in commands_for(scene, CAMERA)} >= {"attribute", "absent"}
