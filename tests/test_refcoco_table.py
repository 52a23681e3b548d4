"""The RefCOCO table puts each pgpt-eval run under the paper's numbers, by dataset and split."""

import json

import pytest

from tools.refcoco_table import main, read_runs, table


def write_run(folder, refs: str, split: str, acc: float, size: int, name: str = "refcoco"):
    folder.mkdir(parents=True)
    metrics = {"dataset": {"name": name, "refs": refs, "split": split, "size": size},
               "overall": {"acc@0.5": acc}}  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_runs_line_up_under_the_paper_row(tmp_path, capsys):
    folders = [
        write_run(tmp_path / "a", "data/refcoco/refs.json", "testB", 0.801, 5095),
        write_run(tmp_path / "b", "data/refcoco/refs.json", "val", 0.853, 10834),
        write_run(tmp_path / "c", "data/refcocog/refs.json", "val", 0.75, 4896),
    ]
    runs = read_runs(folders)
    assert runs[("refcoco", "val")] == pytest.approx((85.3, 10834))
    lines = table(runs, "ours").splitlines()
    assert lines[0] == "| model | refcoco val | refcoco testA | refcoco testB | refcocog val |"
    assert lines[2] == "| PerceptionGPT-7B (paper) | 88.6 | 92.5 | 84.6 | - |"
    assert lines[3] == "| ours | 85.3 (10,834) | - | 80.1 (5,095) | 75.0 (4,896) |"
    assert main([str(f) for f in folders]) == 0
    assert "PerceptionGPT-7B (paper)" in capsys.readouterr().out


def test_a_shapesref_run_is_refused(tmp_path):
    folder = write_run(tmp_path / "s", "", "test", 0.9, 300, name="shapesref")
    with pytest.raises(ValueError, match="not RefCOCO"):
        read_runs([folder])
