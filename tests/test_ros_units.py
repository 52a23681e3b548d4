"""The node's pure parts, without processes: image conversion, messages, overlay, parameters,
command checks, the CLI table and the demo's scoring."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from pgpt_ros.commands import BadCommand
from pgpt_ros.msg import DetectionArray
from pgpt_ros.ros import images, messages
from pgpt_ros.ros.demo import box_score, first_seed_with_every_kind, pick_commands
from pgpt_ros.ros.overlay import PALETTE, draw_overlay
from pgpt_ros.ros.params import NodeParams, read_params_file
from pgpt_ros.ros.perception_node import check_command
from pgpt_ros.ros.say import describe, format_table
from pgpt_ros.runtime import PixelDetection

RNG = np.random.default_rng(0)


def message(pixels: np.ndarray, encoding: str, pad: int = 0) -> Image:
    height = pixels.shape[0]
    rows = np.ascontiguousarray(pixels).reshape(height, -1).view(np.uint8)
    rows = np.concatenate([rows, np.zeros((height, pad), np.uint8)], axis=1)
    return Image(height=height, width=pixels.shape[1], encoding=encoding,
                 step=rows.shape[1], data=rows.tobytes())  # fmt: skip


def test_rgb8_decodes_as_a_view_of_the_message_even_with_row_padding():
    rgb = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for pad in (0, 3):
        msg = message(rgb, "rgb8", pad)
        decoded = images.to_rgb(msg, 64)
        np.testing.assert_array_equal(decoded, rgb)
        assert np.shares_memory(decoded, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize("encoding", ["bgr8", "rgba8", "bgra8", "mono8", "mono16"])
def test_every_encoding_converts_to_rgb(encoding):
    rgb = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    if encoding == "bgr8":
        pixels, expected = rgb[:, :, ::-1], rgb
    elif encoding in ("rgba8", "bgra8"):
        alpha = np.full((4, 6, 1), 7, np.uint8)
        colour = rgb if encoding == "rgba8" else rgb[:, :, ::-1]
        pixels, expected = np.concatenate([colour, alpha], axis=2), rgb
    elif encoding == "mono8":
        pixels, expected = rgb[:, :, 0], np.repeat(rgb[:, :, :1], 3, axis=2)
    else:
        pixels = rgb[:, :, 0].astype(np.uint16) * 4  # 10-bit range: stretched to its peak
        stretched = pixels.astype(np.float32) * (255.0 / int(pixels.max()))
        expected = np.repeat(stretched.astype(np.uint8)[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(images.to_rgb(message(pixels, encoding, 2), 64), expected)


def test_big_endian_mono16_is_read_as_big_endian():
    pixels = np.array([[1, 256, 512]], ">u2")
    msg = message(pixels, "mono16")
    msg.is_bigendian = 1
    np.testing.assert_array_equal(images.to_array(msg, 64), [[1, 256, 512]])


@pytest.mark.parametrize(
    "change, reason",
    [
        (dict(encoding="yuv422"), "unsupported encoding"),
        (dict(width=0, height=0, step=0, data=b""), "zero size"),
        (dict(step=17), "does not fit"),
        (dict(data=bytes(6 * 3 * 4 - 1)), r"step\*height"),
        (dict(width=5000, step=15000), "exceeds max_image_side"),
    ],
)
def test_malformed_images_raise_bad_image_with_the_reason(change, reason):
    msg = message(np.zeros((4, 6, 3), np.uint8), "rgb8")
    for field, value in change.items():
        setattr(msg, field, value)
    with pytest.raises(images.BadImage, match=reason):
        images.to_rgb(msg, 4096)


def test_compressed_images_decode_and_garbage_is_bad_image():
    rgb = RNG.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(rgb).save(buffer, format="PNG")
    msg = CompressedImage(format="png", data=buffer.getvalue())
    np.testing.assert_array_equal(images.compressed_to_rgb(msg, 64), rgb)
    with pytest.raises(images.BadImage, match="exceeds"):
        images.compressed_to_rgb(msg, 10)
    with pytest.raises(images.BadImage, match="not an image PIL can decode") as caught:
        images.compressed_to_rgb(CompressedImage(format="jpeg", data=b"not a jpeg"), 64)
    assert " at 0x" not in str(caught.value)  # no in-memory object in a message a user reads
    truncated = CompressedImage(format="png", data=buffer.getvalue()[:60])
    with pytest.raises(images.BadImage, match="cannot decode 'png' image") as caught:
        images.compressed_to_rgb(truncated, 64)
    assert " at 0x" not in str(caught.value)


def test_from_array_round_trips():
    rgb = RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    msg = images.from_array(rgb, Header(frame_id="f"), "rgb8")
    assert (msg.width, msg.height, msg.step, msg.header.frame_id) == (5, 3, 15, "f")
    np.testing.assert_array_equal(images.to_rgb(msg, 64), rgb)
    with pytest.raises(ValueError):
        images.from_array(rgb, Header(), "mono8")


def detection(box, mask_box=None, shape=(40, 60), phrase="red circle", score=0.8) -> PixelDetection:
    mask = None
    if mask_box is not None:
        mask = np.zeros(shape, bool)
        x0, y0, x1, y1 = mask_box
        mask[y0:y1, x0:x1] = True
    return PixelDetection(phrase, score, np.array(box, np.float64), mask)


def test_detection_box_is_centre_size_clipped_and_mask_is_cropped_to_its_extent():
    header = Header(frame_id="cam")
    found = [detection([10, 5, 30, 25], mask_box=(12, 6, 28, 20)),
             detection([-5, 30, 70, 50])]  # fmt: skip
    result = messages.detection_array(
        found, header=header, width=60, height=40, command_id=3, command="c", answer="a",
        latency_s=0.5,
    )  # fmt: skip
    first, second = result.detections
    assert (first.center_x, first.center_y, first.size_x, first.size_y) == (20, 15, 20, 20)
    roi = first.mask_roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (12, 6, 16, 14)
    assert (first.mask.width, first.mask.height, first.mask.encoding) == (16, 14, "mono8")
    assert set(bytes(first.mask.data)) == {255} and first.mask.header.frame_id == "cam"
    assert (second.center_x, second.center_y, second.size_x, second.size_y) == (30, 35, 60, 10)
    assert second.mask.width == 0 and second.mask_roi.width == 0
    assert [d.id for d in result.detections] == [0, 1]
    assert result.status == DetectionArray.OK and result.header.frame_id == "cam"


def test_instance_ids_number_detections_from_one():
    found = [detection([0, 0, 9, 9], mask_box=(0, 0, 10, 10)),
             detection([5, 5, 20, 20], mask_box=(5, 5, 20, 20)),
             detection([0, 0, 1, 1])]  # fmt: skip
    ids = messages.instance_ids(found, 40, 60)
    assert ids.shape == (40, 60)
    assert ids[0, 0] == 1 and ids[7, 7] == 2 and ids[19, 19] == 2 and ids[30, 30] == 0
    assert set(np.unique(ids)) == {0, 1, 2}


def test_overlay_tints_masks_and_outlines_boxes_at_the_source_size():
    image = np.full((40, 60, 3), 100, np.uint8)
    overlay = draw_overlay(image, [detection([10, 5, 30, 25], mask_box=(12, 8, 28, 22))])
    assert overlay.shape == image.shape and overlay.dtype == np.uint8
    assert not np.array_equal(overlay[15, 20], image[15, 20])  # inside the mask: tinted
    assert np.array_equal(overlay[35, 55], image[35, 55])  # far from everything: untouched
    assert np.array_equal(overlay[25, 20], PALETTE[0])  # bottom box edge in the detection colour
    assert np.array_equal(image, np.full((40, 60, 3), 100, np.uint8))  # input not modified
    captioned = draw_overlay(image, [], caption="find it")
    assert not np.array_equal(captioned[:12, :30], image[:12, :30])
    assert np.array_equal(captioned[30:, :], image[30:, :])


def test_params_validation_names_every_impossible_value():
    assert NodeParams().validated() == NodeParams()
    with pytest.raises(ValueError) as error:
        NodeParams(score_threshold=1.5, max_objects=0, image_reliability="often").validated()
    for name in ("score_threshold", "max_objects", "image_reliability"):
        assert name in str(error.value)


def test_only_runtime_params_change_after_start():
    params = NodeParams()
    assert params.replace(score_threshold=0.7).score_threshold == 0.7
    with pytest.raises(ValueError, match="only be set at start"):
        params.replace(model_path="/other")
    with pytest.raises(ValueError, match="score_threshold"):
        params.replace(score_threshold=-0.1)
    with pytest.raises(ValueError, match="unknown"):
        params.replace(threshold=0.1)


def test_params_file_sections_merge_like_ros(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    max_objects: 2\n    device: cuda\n"
        "perception_node:\n  ros__parameters:\n    max_objects: 5\n"
    )
    assert read_params_file(path, "perception_node") == {"max_objects": 5, "device": "cuda"}
    with pytest.raises(FileNotFoundError):
        read_params_file(tmp_path / "missing.yaml", "perception_node")


@pytest.mark.parametrize(
    "text, problem",
    [("", "empty"), ("  \n\t", "empty"), ("x" * 11, "11 characters"),
     ("find\x00it", "control"), ("find\u202eit", "control"), ("<vis>", "reserved")],
)  # fmt: skip
def test_commands_that_cannot_be_commands_are_refused(text, problem):
    with pytest.raises(BadCommand, match=problem):
        check_command(text, max_length=10)


def test_commands_are_normalised_and_may_be_any_language():
    assert check_command("  Trouve le cercle ROUGE ?\n", 40) == "trouve le cercle rouge"
    assert check_command("find\nit", 10) == "find it"
    assert check_command("赤い丸", 10) == "赤い丸"


def test_table_aligns_columns_and_describe_lists_every_detection():
    table = format_table(("name", "n"), [("a", 1), ("long name", 10)]).splitlines()
    assert table[0] == "name        n" and table[2] == "a           1" and table[3].endswith("10")
    result = messages.detection_array(
        [detection([10, 5, 30, 25], mask_box=(12, 6, 28, 20), phrase="blue star")],
        header=Header(frame_id="cam"), width=60, height=40, command_id=9, command="find it",
        answer="blue star <vis>", latency_s=0.25,
    )  # fmt: skip
    text = describe(result)
    assert "command 9 'find it': OK" in text and "blue star" in text and "16x14+12+6" in text
    busy = messages.status_array(DetectionArray.BUSY, "full", command_id=2, command="x")
    assert "BUSY (full)" in describe(busy) and "no objects found" in describe(busy)


def test_demo_asks_every_kind_and_scores_boxes_against_the_truth():
    seed = first_seed_with_every_kind(7)
    kinds = [kind for kind, _, _ in pick_commands(seed)]
    assert kinds == ["attribute", "relation", "extreme", "multi", "absent"]
    truth = {"objects": [{"box": [0, 0, 10, 10]}, {"box": [20, 20, 40, 40]}]}
    result = DetectionArray(detections=[])
    assert box_score(result, truth, ()) == "1.00 (none expected)"
    assert box_score(result, truth, (0,)) == "0.00"
    found = messages.detection_array(
        [detection([0, 0, 10, 10], shape=(50, 50)), detection([20, 20, 30, 40], shape=(50, 50))],
        header=Header(), width=50, height=50, command_id=1, command="", answer="", latency_s=0,
    )  # fmt: skip
    assert box_score(found, truth, (0, 1)) == "0.75"  # (1.0 + 0.5) / 2
    assert box_score(found, truth, ()) == "0.00 (none expected)"


def test_diagnostics_levels_say_what_to_look_at():
    """ERROR after repeated model failures; WARN for a camera that publishes but delivers no frame
    (the silent transport drop of an oversized image) and for no camera at all; else OK."""
    from diagnostic_msgs.msg import DiagnosticStatus

    from pgpt_ros.ros.diagnostics import diagnostic_status, diagnostic_values
    from pgpt_ros.ros.records import FrameSlot, Stats

    frames, stats = FrameSlot(), Stats()

    def level(publishers: int, **changes) -> tuple[bytes, str]:
        for name, value in changes.items():
            setattr(stats, name, value)
        values = diagnostic_values(stats, frames, 0, "torch")
        status = diagnostic_status(values, name="n", hardware_id="cpu", max_image_age_s=1.0,
                                   image_topic="/image", image_publishers=publishers)  # fmt: skip
        return status.level, status.message

    assert level(0) == (DiagnosticStatus.WARN, "no publisher on /image")
    warn, message = level(1)
    assert warn == DiagnosticStatus.WARN and "but no frame" in message
    frames.put(Image())
    assert level(1) == (DiagnosticStatus.OK, "ok")
    error, message = level(1, errors_in_a_row=3)
    assert error == DiagnosticStatus.ERROR and "3 commands failed" in message
    values = diagnostic_values(stats, frames, 0, "torch")
    assert {"frames_received", "frames_used", "frames_unused"} <= set(values)
    assert "frames_dropped" not in values  # the old name counted frames no command asked about


def test_pgpt_say_refuses_a_nul_that_would_cut_the_command(capsys):
    from pgpt_ros.ros.say import main

    with pytest.raises(SystemExit) as exit_info:
        main(["find the red\x00 circle"])
    assert exit_info.value.code == 2 and "NUL" in capsys.readouterr().err


def test_launch_keeps_every_network_interface_for_robots():
    """The profile the launch file sets has the big shared-memory segment but no loopback-only
    restriction (that belongs to tests: other machines must see the topics)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    launch = (repo / "launch" / "pgpt.launch.py").read_text()
    assert '"fastdds_shm.xml"' in launch and "fastdds_localhost.xml" not in launch
    robot = (repo / "config" / "fastdds_shm.xml").read_text()
    assert "33554432" in robot and "interfaceWhiteList" not in robot
    assert "interfaceWhiteList" in (repo / "config" / "fastdds_localhost.xml").read_text()
