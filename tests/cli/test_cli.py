import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tasks.store.read import open_table
from tests.factories import make_table

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _command_names():
    return [c.name for c in app.registered_commands]


def test_top_level_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in _command_names():
        assert name in result.output


@pytest.mark.parametrize("name", ["demo", "inspect", "settings", "synth", "ingest", "render", "pseudo-label"])
def test_every_command_has_help(name):
    assert name in _command_names()
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_inspect_prints_manifest_schema_and_rows(tables_dir):
    path = tables_dir / "samples"
    manifest = make_table(path, n=6, rows_per_shard=4)
    result = runner.invoke(app, ["inspect", str(path), "--rows", "2"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "rows 6" in result.output and "shards 2" in result.output
    assert manifest.shards[0].name in result.output and "object_points" in result.output
    assert "first 2 rows" in result.output and "[32x3]" in result.output


def test_inspect_json_is_the_manifest(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=3)
    result = runner.invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0
    assert '"num_rows": 3' in result.output


def test_inspect_names_a_corrupt_shard_and_fails(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=3)
    shard = open_table(path).shard_paths()[0]
    shard.write_bytes(shard.read_bytes()[:-10])
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 1 and shard.name in result.output


def test_inspect_of_a_non_table_fails_clearly(tmp_path):
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == 1 and "no manifest.json" in result.output


def test_settings_names_a_bad_variable():
    result = runner.invoke(app, ["settings"], env={"AFFORD_ROWS_PER_SHARD": "0"})
    assert result.exit_code == 2 and "AFFORD_ROWS_PER_SHARD" in result.output
    result = runner.invoke(app, ["settings"], env={"AFFORD_LLM_API_KEY": "sk-hidden", "COLUMNS": "200"})
    assert result.exit_code == 0 and "sk-hidden" not in result.output and "AFFORD_DATA_ROOT" in result.output


def test_ingest_refuses_bad_arguments_by_name(tmp_path):
    result = runner.invoke(app, ["ingest", "--format", "coco", "--root", str(tmp_path), "--out", str(tmp_path / "t"),
                                 "--mano-root", str(tmp_path)])
    assert result.exit_code == 2 and "--format 'coco'" in result.output
    result = runner.invoke(app, ["ingest", "--format", "grab", "--root", str(tmp_path / "nope"),
                                 "--out", str(tmp_path / "t"), "--mano-root", str(tmp_path)])
    assert result.exit_code == 2 and "--root" in result.output and "nope" in result.output
    (tmp_path / "ds").mkdir()
    result = runner.invoke(app, ["ingest", "--format", "grab", "--root", str(tmp_path / "ds"),
                                 "--out", str(tmp_path / "t"), "--mano-root", str(tmp_path)])
    assert result.exit_code == 2 and "MANO_RIGHT.pkl" in result.output


def test_ingest_never_writes_over_its_input_or_a_non_table(tmp_path):
    from tasks.synth.datasets import synthesize_datasets

    synth = synthesize_datasets(tmp_path / "d", categories=["knife"], steps=10)
    root = synth.root / "affordpose"
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    for out in (root, root / "tables" / "samples"):  # the dataset itself, and a table inside it
        result = runner.invoke(app, ["ingest", "--format", "affordpose", "--root", str(root), "--out", str(out),
                                     "--mano-root", str(synth.mano_root)], env={"COLUMNS": "200"})
        assert result.exit_code == 2 and "overlaps the dataset root" in result.output, result.output
        assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    result = runner.invoke(app, ["ingest", "--format", "affordpose", "--root", str(root), "--out", str(precious),
                                 "--mano-root", str(synth.mano_root)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "notes.txt: is an existing file" in result.output, result.output
    assert precious.read_text() == "keep me"


def test_render_draws_a_sample_and_names_a_missing_one(tmp_path):
    from tasks.ingest.pipeline import ingest
    from tasks.synth.datasets import synthesize_datasets

    synth = synthesize_datasets(tmp_path / "d", categories=["knife"], steps=10)
    ingest("affordpose", synth.root / "affordpose", tmp_path / "t" / "affordpose", synth.mano_root, num_points=64)
    # No --mano-root: the generated hand that `afford synth` wrote beside the datasets is found.
    result = runner.invoke(app, ["ingest", "--format", "oakink", "--root", str(synth.root / "oakink"),
                                 "--out", str(tmp_path / "t" / "oakink")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "found beside the dataset" in result.output and "1 inputs = 1 rows + 0 rejects" in result.output
    result = runner.invoke(app, ["render", str(tmp_path / "t" / "affordpose"), "--out", str(tmp_path / "k.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "k.png").stat().st_size > 10_000
    result = runner.invoke(app, ["render", str(tmp_path / "t" / "affordpose"), "--out", str(tmp_path / "x.png"),
                                 "--sample-id", "affordpose-0000000000000000"])
    assert result.exit_code == 1 and "no sample 'affordpose-0000000000000000'" in result.output


@pytest.mark.slow
def test_afford_demo_runs_end_to_end(tmp_path):
    """The real console script, in a fresh process on Prefect's ephemeral API."""
    afford = Path(sys.executable).with_name("afford")
    env = os.environ | {"COLUMNS": "200", "AFFORD_DATA_ROOT": str(tmp_path / "data")}
    # The demo's own sizes train the classifier for minutes; one labelled object per category and 2 epochs
    # exercise the same path.
    result = subprocess.run([str(afford), "demo", "--num-points", "256", "--labelled-objects-per-category", "1",
                             "--labelled-grasps-per-part", "1", "--epochs", "2", "--max-cycles", "2",
                             "--queue-size", "12", "--instructions", "template", "--affordance-preset", "tiny",
                             "--affordance-steps", "20"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    tables = (tmp_path / "data" / "tables").resolve()
    assert str(tables / "oakink") in result.stdout
    # Synthetic OakInk holds the classes OakInk has (6 of 13): its size is what the synthesiser wrote.
    oakink = len(list((tmp_path / "data" / "datasets" / "oakink").rglob("hand_param.pkl")))
    rows = {"affordpose": 31, "oakink": oakink, "grab": 32, "ho3d": 31}
    assert 0 < oakink < 32
    assert f"{sum(rows.values()) + 2} inputs = {sum(rows.values())} rows + 2 rejects" in result.stdout
    for fmt, count in rows.items():
        assert open_table(tables / fmt).num_rows == count, fmt
    assert open_table(tables / "rejects").num_rows == 2
    assert len(list((tmp_path / "data" / "renders").glob("*.png"))) == 4
    assert "Classifier (cycle 0" in result.stdout and "Self-training" in result.stdout
    # Self-training ends with a label on every OakInk, GRAB and HO-3D row (some may be low_confidence).
    targets = oakink + 32 + 31
    assert open_table(tables / "affordance_labels").num_rows == targets
    for name in ("training_curve.png", "confusion_test.png"):
        assert (tmp_path / "data" / "self_training" / "cycle-0" / name).is_file(), name
    assert (tmp_path / "data" / "self_training" / "cycles.md").is_file()
    assert (tmp_path / "data" / "review" / "review.sqlite").is_file()
    # Every labelled grasp gets an instruction: AffordPose's own labels and the self-training ones.
    assert open_table(tables / "instructions").num_rows == 31 + targets
    assert f"{31 + targets} samples -> {31 + targets} instructions" in result.stdout
    # Every labelled target sample gets an affordance map; the model's tables and figure are written.
    assert open_table(tables / "affordance_maps").num_rows == targets
    # One AffordPose object per class: none can be held out, and the report says so instead of failing.
    assert "No held-out objects to evaluate on" in result.stdout and f"Mapped {targets} target samples" in result.stdout
    assert (tmp_path / "data" / "affordance" / "figures" / "maps_three_instructions.png").is_file()
    # The annotated join: every labelled grasp with its instruction and map.
    assert open_table(tables / "annotated").num_rows == 31 + targets
    assert f"{31 + targets} annotated rows" in result.stdout


def test_pseudo_label_refuses_bad_arguments_by_name(tmp_path):
    table = tmp_path / "samples"
    make_table(table, n=3)
    result = runner.invoke(app, ["pseudo-label", "--labelled", str(table), "--target", str(table),
                                 "--out", str(tmp_path / "pl"), "--preset", "huge"])
    assert result.exit_code == 2 and "--preset 'huge'" in result.output
    result = runner.invoke(app, ["pseudo-label", "--labelled", str(table), "--target", str(tmp_path / "nope"),
                                 "--out", str(tmp_path / "pl")])
    assert result.exit_code == 2 and "nope: not a table" in result.output


def test_pseudo_label_defaults_are_the_training_defaults():
    # The CLI spells its defaults out (importing torch would slow every `afford` call); they must not drift.
    import inspect

    from cli.pseudo_label_cmd import pseudo_label
    from tasks.pseudo_label.classifier_config import TrainConfig

    params = inspect.signature(pseudo_label).parameters
    assert params["epochs"].default.default == TrainConfig.epochs
    assert params["lr"].default.default == TrainConfig.lr
    from cli.demo_cmd import demo

    assert inspect.signature(demo).parameters["epochs"].default.default == TrainConfig.epochs


def test_affordance_step_defaults_are_the_training_default():
    import inspect

    from cli.affordance_cmd import affordance
    from cli.annotate_cmd import annotate
    from cli.demo_cmd import demo
    from tasks.affordance.config import MapTrainConfig

    assert inspect.signature(affordance).parameters["steps"].default.default == MapTrainConfig.steps
    for command in (annotate, demo):
        assert inspect.signature(command).parameters["affordance_steps"].default.default == MapTrainConfig.steps


@pytest.mark.server
def test_pseudo_label_names_a_checkpoint_of_another_architecture(prefect_harness, tmp_path):
    import torch

    table = tmp_path / "samples"
    make_table(table, n=3)
    foreign = tmp_path / "resnet.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}, "config": {"depth": 50}}, foreign)
    result = runner.invoke(app, ["pseudo-label", "--labelled", str(table), "--target", str(table),
                                 "--out", str(tmp_path / "pl"), "--checkpoint", str(foreign)])
    assert result.exit_code == 1 and "resnet.pt: bad config" in result.output


def test_instruct_refuses_bad_arguments_by_name(tmp_path):
    table = tmp_path / "samples"
    make_table(table, n=2)
    result = runner.invoke(app, ["instruct", "--table", str(table), "--out", str(tmp_path / "i"),
                                 "--generator", "gpt"])
    assert result.exit_code == 2 and "--generator 'gpt'" in result.output
    result = runner.invoke(app, ["instruct", "--table", str(tmp_path / "nope"), "--out", str(tmp_path / "i")])
    assert result.exit_code == 2 and "nope: no manifest.json; not a table" in result.output
    result = runner.invoke(app, ["demo", "--instructions", "gpt"])
    assert result.exit_code == 2 and "--instructions 'gpt'" in result.output


def test_affordance_refuses_bad_arguments_by_name(tmp_path):
    table = tmp_path / "samples"
    make_table(table, n=2)
    out = str(tmp_path / "aff")
    result = runner.invoke(app, ["affordance", "--labelled", str(table), "--out", out, "--preset", "huge"])
    assert result.exit_code == 2 and "--preset 'huge'" in result.output
    result = runner.invoke(app, ["affordance", "--labelled", str(tmp_path / "nope"), "--out", out])
    assert result.exit_code == 2 and "nope: not a table" in result.output
    result = runner.invoke(app, ["affordance", "--labelled", str(table), "--out", out,
                                 "--checkpoint", str(tmp_path / "missing.pt")])
    assert result.exit_code == 2 and "missing.pt: no such file" in result.output
    import torch

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    result = runner.invoke(app, ["affordance", "--labelled", str(table), "--out", out, "--checkpoint", str(foreign)])
    assert result.exit_code == 1 and "foreign.pt: not an affordance-map checkpoint" in result.output
    result = runner.invoke(app, ["demo", "--affordance-preset", "huge"])
    assert result.exit_code == 2 and "--affordance-preset 'huge'" in result.output
