"""The node's counters as a diagnostic_msgs status: rates, frames, commands, errors, timings.

The level says what a user should look at: WARN when no camera publishes on the image topic, or
when one does but no frame has arrived for ``max_image_age_s`` (typically a frame too large for
the DDS transport, which DDS drops without a word); ERROR after ``ERRORS_IN_A_ROW`` internal
errors in a row (the model keeps failing).
"""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from pgpt_ros.ros.records import FrameSlot, Stats

ERRORS_IN_A_ROW = 3


def diagnostic_values(
    stats: Stats, frames: FrameSlot, queued: int, backend: str
) -> dict[str, object]:
    """The values of one diagnostics message; resets the image-rate window (call once per
    period, with the node's lock held for ``stats``)."""
    frame = frames.frame
    return {
        "backend": backend,
        "image_rate_hz": f"{frames.rate_hz():.2f}",
        "image_age_s": f"{time.monotonic() - frame.received:.3f}" if frame else "inf",
        "frames_received": frames.received,
        "frames_used": frames.used,
        "frames_unused": frames.unused,
        "commands": stats.commands,
        "commands_busy": stats.busy,
        "queued_commands": queued,
        "internal_errors": stats.errors,
        "internal_errors_in_a_row": stats.errors_in_a_row,
        "last_status": stats.last_status,
        "last_latency_s": f"{stats.last_latency_s:.4f}",
        "last_inference_s": f"{stats.last_inference_s:.4f}",
    }


def diagnostic_status(
    values: dict[str, object],
    *,
    name: str,
    hardware_id: str,
    max_image_age_s: float,
    image_topic: str,
    image_publishers: int,
) -> DiagnosticStatus:
    """The status of ``values`` (see the module docstring for the levels)."""
    level, message = DiagnosticStatus.OK, "ok"
    age = float(values["image_age_s"])
    if int(values["internal_errors_in_a_row"]) >= ERRORS_IN_A_ROW:
        level = DiagnosticStatus.ERROR
        message = f"the last {values['internal_errors_in_a_row']} commands failed in the model"
    elif image_publishers == 0:
        level, message = DiagnosticStatus.WARN, f"no publisher on {image_topic}"
    elif age > max_image_age_s:
        level = DiagnosticStatus.WARN
        message = (
            f"{image_publishers} publisher(s) on {image_topic} but no frame for "
            f"{'ever' if age == float('inf') else f'{age:.1f} s'}: frames too large for the DDS "
            "transport are dropped silently (see the Fast DDS profile in docs/ros.md)"
        )
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
    )
