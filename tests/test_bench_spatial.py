"""pgpt-bench spatial: the latency part runs and writes its JSON; the error summary's statistics."""

from __future__ import annotations

import json

import pytest

from pgpt_ros.ros import spatial_bench as spatial


def test_latency_part_writes_json_and_prints_a_table(tmp_path, capsys):
    assert (
        spatial.main(["--no-model", "--scenes", "1", "--repeats", "1", "--out", str(tmp_path)]) == 0
    )
    result = json.loads((tmp_path / "spatial-cpu.json").read_text())
    assert [row["size"] for row in result["latency"]] == ["640x480", "1280x720"]
    row = result["latency"][0]
    assert row["objects"] > 0 and row["median_mask_pixels"] > 0
    assert all(row[f"{k}_ms"] > 0 for k in ("mask", "box", "markers", "points"))
    assert "error" not in result and "standing" not in result
    assert "| 640x480 |" in capsys.readouterr().out


def test_error_summary_counts_only_found_shapes_and_splits_by_visibility():
    rows = [
        {"fully_visible": True, "box_iou": 0.9, "error_mm": e, "depth_m": 1.0}
        for e in (1.0, 2.0, 3.0, 4.0, 10.0)
    ]
    rows += [
        {"fully_visible": True, "box_iou": 0.3, "error_mm": 500.0, "depth_m": 1.0},  # wrong object
        {"fully_visible": False, "box_iou": 0.8, "error_mm": 8.0, "depth_m": 2.0},
        {"fully_visible": False, "status": "not found"},
    ]
    summary = spatial.error_summary(rows)
    full = summary["fully visible"]
    assert (full["objects"], full["median_mm"], full["max_mm"]) == (5, 3.0, 10.0)
    assert full["p90_mm"] == pytest.approx(7.6)  # numpy's linear interpolation
    assert full["median_percent_of_depth"] == pytest.approx(0.3)  # 3 mm at 1 m
    assert summary["partly hidden"]["median_percent_of_depth"] == pytest.approx(0.4)
