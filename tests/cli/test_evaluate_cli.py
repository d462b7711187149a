"""`afford evaluate`: registered, bad arguments refused by name with exit code 2 before any work, good ones reach
the flow unchanged, and a real run at tiny size (one head count, in-process metrics) writes the report."""

import pytest
from typer.testing import CliRunner

import flows.evaluate_grasp
from cli.main import app
from tests.grasp_factories import fake_embed, single_thread, write_annotated
from tests.tasks.grasp.evaluation.test_inputs import train_tiny, write_samples

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()


@pytest.fixture
def table(tmp_path):
    write_annotated(tmp_path / "annotated", n=3, affordpose=0, other_split=0)
    (tmp_path / "h1.pt").write_bytes(b"not used")
    return tmp_path


def test_evaluate_is_registered_with_help():
    result = runner.invoke(app, ["evaluate", "--help"])
    assert result.exit_code == 0 and "--checkpoint" in result.output and "--objects-per-dataset" in result.output


@pytest.mark.parametrize("args,named", [
    (["--checkpoint", "h1.pt"], "--checkpoint"),  # no HEADS=
    (["--checkpoint", "3={h1}"], "--checkpoint"),  # heads not 1, 2 or 4
    (["--checkpoint", "2={dir}/missing.pt"], "--checkpoint"),
    (["--checkpoint", "1={h1}", "--checkpoint", "1={h1}"], "--checkpoint"),
    (["--checkpoint", "1={h1}", "--classifier", "{dir}/none.pt"], "--classifier"),
    (["--checkpoint", "1={h1}", "--samples-root", "{dir}/none"], "--samples-root"),
    (["--checkpoint", "1={h1}", "--objects-per-dataset", "0"], "--objects-per-dataset"),
    (["--checkpoint", "1={h1}", "--grasps-per-object", "0"], "--grasps-per-object"),
    (["--checkpoint", "1={h1}", "--workers", "-1"], "--workers"),
    (["--checkpoint", "1={h1}", "--device", "tpu"], "--device"),
    (["--checkpoint", "1={h1}", "--baseline", "nearest"],
     "--baseline 'nearest' is not one of tta, retrieval, ground_truth"),
    (["--checkpoint", "1={h1}", "--split", "train"], "--split 'train' is not one of auto, test, val, all"),
    (["--checkpoint", "1={h1}", "--guidance", "-1"], "--guidance"),
    (["--checkpoint", "1={h1}", "--ddim-steps", "0"], "--ddim-steps"),
])
def test_evaluate_refuses_bad_arguments_by_name(table, args, named):
    args = [a.format(h1=table / "h1.pt", dir=table) for a in args]
    result = runner.invoke(app, ["evaluate", "--annotated", str(table / "annotated"), "--out", str(table / "o"),
                                 *args])
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert not (table / "o").exists()


def test_evaluate_refuses_a_folder_that_is_not_a_table(tmp_path):
    result = runner.invoke(app, ["evaluate", "--annotated", str(tmp_path), "--checkpoint", "1=x.pt",
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--annotated" in result.output


def test_evaluate_passes_options_to_the_flow(table, monkeypatch):
    seen = {}

    def fake_flow(**kwargs):
        seen.update(kwargs)
        return "## Grasp generator evaluation"
    monkeypatch.setattr(flows.evaluate_grasp, "evaluate_grasp", fake_flow)
    result = runner.invoke(app, ["evaluate", "--annotated", str(table / "annotated"), "--out", str(table / "o"),
                                 "--checkpoint", f"1={table / 'h1.pt'}", "--checkpoint", f"4={table / 'h1.pt'}",
                                 "--objects-per-dataset", "3", "--grasps-per-object", "5", "--workers", "1",
                                 "--baseline", "ground_truth", "--baseline", "retrieval", "--baseline", "retrieval",
                                 "--split", "test", "--by-affordance", "--guidance", "3.5", "--ddim-steps", "40"])
    assert result.exit_code == 0, result.output
    assert seen["baselines"] == ["ground_truth", "retrieval"]  # in the order given, each once
    assert seen["checkpoints"] == {1: str(table / "h1.pt"), 4: str(table / "h1.pt")}
    assert (seen["objects_per_dataset"], seen["grasps_per_object"], seen["workers"]) == (3, 5, 1)
    assert seen["classifier"] is None and seen["samples_root"] is None
    assert seen["split"] == "test" and seen["by_affordance"] is True
    assert (seen["guidance"], seen["ddim_steps"]) == (3.5, 40)


@pytest.mark.server
@pytest.mark.slow
def test_evaluate_runs_end_to_end_at_tiny_size(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.setattr(flows.evaluate_grasp, "sentence_embedder", lambda: fake_embed)
    rows = write_annotated(tmp_path / "tables" / "annotated", n=4, affordpose=0, other_split=0)
    write_samples(tmp_path / "tables", rows)
    model = train_tiny(rows, tmp_path / "h1", heads=1)
    result = runner.invoke(app, ["evaluate", "--annotated", str(tmp_path / "tables" / "annotated"),
                                 "--checkpoint", f"1={model}", "--out", str(tmp_path / "eval"),
                                 "--objects-per-dataset", "1", "--grasps-per-object", "2", "--workers", "1",
                                 "--tto-steps", "2", "--speed-batch", "2"])
    assert result.exit_code == 0, result.output
    assert "Penetration volume" in result.output and "Test-time optimisation" in result.output
    for name in ("report.md", "metrics.json", "grasps.png"):
        assert (tmp_path / "eval" / name).is_file()
