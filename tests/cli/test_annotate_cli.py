"""`afford annotate` on datasets of one's own (here: the synthetic four) and `afford reannotate` after a change,
through the real console script in fresh processes on Prefect's ephemeral API: no server started by hand."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tasks.store.read import open_table
from tests.annotate_factories import oakink_params, perturb_oakink, synth_small

runner = CliRunner()


def _afford(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    afford = Path(sys.executable).with_name("afford")
    command = [str(afford)] if afford.is_file() else [sys.executable, "-m", "cli.main"]
    env = os.environ | {"COLUMNS": "200", "AFFORD_DATA_ROOT": str(tmp_path / "unused-default")}
    return subprocess.run([*command, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_annotate_then_reannotate_one_changed_sample(tmp_path):
    datasets = synth_small(tmp_path)
    data = tmp_path / "data"
    result = _afford(["annotate", "--datasets-root", str(datasets), "--data-root", str(data), "--reviewer",
                      "simulated", "--instructions", "template", "--epochs", "1", "--max-cycles", "1",
                      "--queue-size", "10", "--affordance-preset", "tiny", "--affordance-steps", "2",
                      "--num-points", "256"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    annotated = open_table(data / "tables" / "annotated")
    samples = sum(open_table(data / "tables" / fmt).num_rows for fmt in ("affordpose", "oakink", "grab", "ho3d"))
    assert annotated.num_rows == samples > 0
    for heading in ("Ingest", "Self-training", "Annotated"):  # the same stage tables the demo prints
        assert heading in result.stdout, heading
    assert f"Data root: {data.resolve()}" in result.stdout
    assert not (tmp_path / "unused-default").exists()  # --data-root wins over AFFORD_DATA_ROOT

    perturb_oakink(oakink_params(datasets)[0])
    result = _afford(["reannotate", "--dataset", "oakink", "--datasets-root", str(datasets), "--data-root",
                      str(data)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Re-annotation of oakink" in result.stdout and "1 changed or new" in result.stdout
    assert open_table(data / "tables" / "annotated").num_rows == samples


def test_annotate_refuses_bad_options_by_name(tmp_path):
    result = runner.invoke(app, ["annotate", "--datasets-root", str(tmp_path / "nope")])
    assert result.exit_code == 2 and f"--datasets-root {tmp_path / 'nope'}: not a directory" in result.output
    result = runner.invoke(app, ["annotate", "--datasets-root", str(tmp_path)])
    assert result.exit_code == 2 and "no dataset folder inside (expected one of affordpose, oakink" in result.output
    result = runner.invoke(app, ["annotate", "--datasets-root", str(tmp_path), "--reviewer", "robot"])
    assert result.exit_code == 2 and "--reviewer 'robot' is not one of web, simulated" in result.output
    result = runner.invoke(app, ["annotate", "--datasets-root", str(tmp_path), "--classifier-preset", "huge"])
    assert result.exit_code == 2 and "--classifier-preset 'huge' is not one of cpu, cpu-wide, paper" in result.output


def test_reannotate_refuses_an_unknown_or_missing_dataset(tmp_path):
    result = runner.invoke(app, ["reannotate", "--dataset", "coco", "--datasets-root", str(tmp_path)])
    assert result.exit_code == 2 and "--dataset 'coco' is not one of affordpose, oakink, grab, ho3d" in result.output
    result = runner.invoke(app, ["reannotate", "--dataset", "grab", "--datasets-root", str(tmp_path)])
    assert result.exit_code == 2 and "no folder grab/ inside" in result.output
