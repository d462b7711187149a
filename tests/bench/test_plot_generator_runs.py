"""plot_generator_runs: a run is VALUE=FOLDER with a result.json (bad entries refused by name); the figures come from
the pooled Table 9's model row of a committed run; the PNG is written."""

import subprocess
import sys
from pathlib import Path

import pytest

from bench.plot_generator_runs import PANELS, parse_run, pooled_model_row

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "docs" / "results" / "generator_runs" / "val_dam_w3"


def test_a_run_is_a_value_and_a_folder_with_a_result(tmp_path):
    assert parse_run(f"3={RUN}") == (3.0, RUN)
    with pytest.raises(ValueError, match=r"run 'x=.*a number before '='"):
        parse_run(f"x={RUN}")
    with pytest.raises(ValueError, match=f"{tmp_path}/result.json does not exist"):
        parse_run(f"1={tmp_path}")


def test_the_model_row_of_a_committed_run_has_every_panel():
    row = pooled_model_row(RUN / "result.json")
    assert row["method"] == "model" and row["grasps"] > 0
    for column in PANELS:
        assert isinstance(row[column], float), column


def test_a_result_without_the_pooled_table_is_named(tmp_path):
    (tmp_path / "result.json").write_text('{"figures": {"tables": []}}')
    with pytest.raises(ValueError, match="no pooled Table 9 with a model row"):
        pooled_model_row(tmp_path / "result.json")


def test_the_figure_is_written(tmp_path):
    out = tmp_path / "runs.png"
    run = subprocess.run([sys.executable, "-m", "bench.plot_generator_runs", "--setting", "w_hand", "--out", str(out),
                          f"3={RUN}", f"1={RUN.parent / 'val_dam_w1'}"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
