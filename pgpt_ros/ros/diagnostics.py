"""The node's counters as a diagnostic_msgs status: rates, frames, commands, errors, timings."""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from pgpt_ros.ros.records import Frame, Stats


def diagnostic_values(
    stats: Stats, frame: Frame | None, queued: int, backend: str
) -> dict[str, object]:
    """The values of one diagnostics message; resets the image-rate window (call under the node's
    lock, once per period)."""
    now = time.monotonic()
    rate = stats.period_frames / max(now - stats.period_start, 1e-6)
    stats.period_frames, stats.period_start = 0, now
    return {
        "backend": backend,
        "image_rate_hz": f"{rate:.2f}",
        "image_age_s": f"{now - frame.received:.3f}" if frame else "inf",
        "frames_received": stats.frames,
        "frames_answered": stats.frames_answered,
        "frames_dropped": stats.frames - stats.frames_answered,
        "commands": stats.commands,
        "commands_busy": stats.busy,
        "queued_commands": queued,
        "internal_errors": stats.errors,
        "last_status": stats.last_status,
        "last_latency_s": f"{stats.last_latency_s:.4f}",
        "last_inference_s": f"{stats.last_inference_s:.4f}",
    }


def diagnostic_status(
    values: dict[str, object], *, name: str, hardware_id: str, max_image_age_s: float
) -> DiagnosticStatus:
    """OK, or WARN when no image arrived within ``max_image_age_s``."""
    level, message = DiagnosticStatus.OK, "ok"
    age = float(values["image_age_s"])
    if age > max_image_age_s:
        level, message = DiagnosticStatus.WARN, "no recent image"
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
    )
