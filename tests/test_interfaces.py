"""The generated interfaces: every field survives CDR serialisation, status codes are complete."""

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header

from pgpt_ros.msg import Detection, DetectionArray
from pgpt_ros.srv import Locate

STATUS_NAMES = [
    "OK",
    "NO_IMAGE",
    "STALE_IMAGE",
    "BAD_IMAGE",
    "BAD_COMMAND",
    "BUSY",
    "INTERNAL_ERROR",
    "STOPPING",
    "INACTIVE",
    "INCOMPLETE_ANSWER",
]


def make_detection(index: int) -> Detection:
    rng = np.random.default_rng(index)
    mask = (rng.random((12, 20)) > 0.5).astype(np.uint8) * 255
    return Detection(
        id=index,
        phrase=f"red mug {index}",
        score=0.25 + 0.5 * index,
        center_x=320.5,
        center_y=240.25,
        size_x=40.0,
        size_y=24.0,
        mask_roi=RegionOfInterest(x_offset=300, y_offset=228, width=20, height=12),
        mask=Image(
            header=Header(frame_id="camera"),
            height=12,
            width=20,
            encoding="mono8",
            step=20,
            data=mask.tobytes(),
        ),
    )


def make_array() -> DetectionArray:
    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 1_700_000_000, 123_456_789
    return DetectionArray(
        header=header,
        image_width=640,
        image_height=480,
        command_id=42,
        command="the red mug left of the laptop",
        answer="red mug <vis>, red mug <vis>",
        detections=[make_detection(0), make_detection(1)],
        status=DetectionArray.OK,
        status_message="",
        latency_s=0.125,
    )


@pytest.mark.parametrize("make", [lambda: make_detection(3), make_array])
def test_message_round_trip(make):
    msg = make()
    data = serialize_message(msg)
    back = deserialize_message(data, type(msg))
    assert back == msg
    # The equality above is field-wise; check the bytes that matter most explicitly too.
    if isinstance(msg, DetectionArray):
        assert bytes(back.detections[1].mask.data) == bytes(msg.detections[1].mask.data)
        assert back.header.stamp.nanosec == 123_456_789


def test_round_trip_detects_a_changed_field():
    data = serialize_message(make_array())
    changed = make_array()
    changed.detections[0].center_x += 1.0
    assert deserialize_message(data, DetectionArray) != changed


def test_locate_service_round_trip():
    request = Locate.Request(command="find the blue square", image=Image(width=0))
    assert deserialize_message(serialize_message(request), Locate.Request) == request
    response = Locate.Response(result=make_array())
    assert deserialize_message(serialize_message(response), Locate.Response) == response


def test_status_constants_are_complete_and_distinct():
    values = [getattr(DetectionArray, name) for name in STATUS_NAMES]
    assert values[0] == 0, "OK must be 0 so a default-constructed array is not an error"
    assert len(set(values)) == len(STATUS_NAMES)
