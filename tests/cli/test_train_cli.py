"""`afford train` and `afford sample`: registered, bad arguments refused by name, options reach the flow; the
torchrun entry (python -m tasks.grasp.train) reads RANK / LOCAL_RANK / WORLD_SIZE and each rank trains on its own
share of the data; a real two-process gloo run on CPU (slow); `afford sample` renders K grasps of a mesh."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import tasks.grasp.data
from cli.main import app
from tasks.grasp.config import GraspTrainConfig, preset_config
from tasks.grasp.data import items_from_rows, mano_layer
from tasks.grasp.distributed import DistContext, distributed_context, rank_device
from tasks.grasp.model import read_checkpoint
from tasks.grasp.train import main, train_grasp_model
from tests.grasp_factories import annotated_rows, fake_embed, single_thread, write_annotated

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()


@pytest.fixture
def table(tmp_path):
    write_annotated(tmp_path / "annotated", n=4, affordpose=1, other_split=0)
    return tmp_path / "annotated"


def test_train_and_sample_are_registered_with_help():
    for name in ("train", "sample"):
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


@pytest.mark.parametrize("args,named", [
    (["--preset", "huge"], "--preset"),
    (["--dam-heads", "3"], "--dam-heads"),
    (["--device", "tpu"], "--device"),
    (["--steps", "0"], "--steps"),
    (["--batch-size", "0"], "--batch-size"),
])
def test_train_refuses_bad_arguments_by_name(table, tmp_path, args, named):
    result = runner.invoke(app, ["train", "--annotated", str(table), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2 and named in result.output, result.output


def test_train_refuses_a_missing_table(tmp_path):
    result = runner.invoke(app, ["train", "--annotated", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--annotated" in result.output and "manifest.json" in result.output


def test_train_passes_its_options_to_the_flow(table, tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("flows.train_grasp.train_grasp", lambda **kw: seen.update(kw) or "## done")
    result = runner.invoke(app, ["train", "--annotated", str(table), "--out", str(tmp_path / "o"), "--preset",
                                 "paper", "--steps", "7", "--dam-heads", "1", "--device", "cuda:1", "--batch-size",
                                 "32", "--compile"])
    assert result.exit_code == 0, result.output
    assert seen | {"annotated_table": None} == {
        "annotated_table": None, "out_dir": str(tmp_path / "o"), "preset": "paper", "steps": 7,
        "batch_size": 32, "dam_heads": 1, "device": "cuda:1", "seed": 0, "mano_root": None, "compile": True,
        "preview_grasps": 4}


def test_sample_refuses_bad_arguments_by_name(tmp_path):
    base = ["sample", "--object", str(tmp_path / "m.obj"), "--out", str(tmp_path / "s.png")]
    result = runner.invoke(app, [*base, "--checkpoint", str(tmp_path / "none.pt"), "--instruction", "Grip it"])
    assert result.exit_code == 2 and "--checkpoint" in result.output
    (tmp_path / "c.pt").write_bytes(b"not a checkpoint")
    result = runner.invoke(app, [*base, "--checkpoint", str(tmp_path / "c.pt"), "--instruction", "  "])
    assert result.exit_code == 2 and "--instruction" in result.output
    result = runner.invoke(app, [*base, "--checkpoint", str(tmp_path / "c.pt"), "--instruction", "Grip", "-n", "0"])
    assert result.exit_code == 2 and "-n" in result.output
    result = runner.invoke(app, [*base, "--checkpoint", str(tmp_path / "c.pt"), "--instruction", "Grip it"])
    assert result.exit_code == 1 and "not a torch file" in result.output


def test_torchrun_environment_is_read_and_checked():
    assert distributed_context({}) == DistContext(0, 0, 1)
    assert distributed_context({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}) == DistContext(3, 1, 4)
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        distributed_context({"WORLD_SIZE": "two"})
    with pytest.raises(ValueError, match="RANK=4"):
        distributed_context({"RANK": "4", "WORLD_SIZE": "4"})
    if not torch.cuda.is_available():
        assert rank_device("auto", DistContext(1, 1, 2)) == torch.device("cpu")


def test_the_training_entry_wires_torchrun_ranks_and_arguments(table, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(tasks.grasp.data, "sentence_embedder", lambda: fake_embed)
    calls = []
    main(["--annotated", str(table), "--out", str(tmp_path / "o"), "--preset", "paper", "--steps", "3",
          "--dam-heads", "2", "--device", "cpu", "--batch-size", "2"],
         run=lambda items, mano, config, out, **kw: calls.append((items, config, out, kw)))
    (items, config, out, kw), = calls
    assert kw["context"] == DistContext(1, 1, 2) and out == str(tmp_path / "o")
    assert isinstance(config, GraspTrainConfig) and config.total_steps == 9 and config.dam_heads == 2
    assert config.preset == "paper" and config.batch_size == 2 and len(items) == 4


def test_each_rank_draws_batches_from_its_own_share(monkeypatch, tmp_path):
    """Two ranks, no process group: gradients are not averaged (world=1 for the all-reduce), but the batches each
    rank draws come only from its share of the items."""
    import tasks.grasp.train as train_module

    mano = mano_layer()[0]
    items = items_from_rows(annotated_rows(n=5, affordpose=0, other_split=0), mano, fake_embed, num_points=32)
    monkeypatch.setattr(train_module, "init_distributed", lambda context, device: None)
    monkeypatch.setattr(train_module, "average_gradients", lambda params, world: None)
    drawn = {}
    original = train_module.GraspDataset.batch

    def spy(self, index, device=None):
        drawn.setdefault(rank, set()).update(index.tolist())
        return original(self, index, device)
    monkeypatch.setattr(train_module.GraspDataset, "batch", spy)
    config = preset_config("tiny", steps=4, num_points=32, device="cpu")
    for rank in (0, 1):
        train_grasp_model(items, mano, config, tmp_path / f"r{rank}", context=DistContext(rank, rank, 2))
    assert drawn[0] <= {0, 2, 4} and drawn[1] <= {1, 3}
    assert (tmp_path / "r0" / "grasp_model.pt").is_file() and not (tmp_path / "r1" / "grasp_model.pt").exists()


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_with_gloo(table, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not installed")
    out = tmp_path / "ddp"
    result = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "tasks.grasp.train",
                             "--annotated", str(table), "--out", str(out), "--steps", "3", "--device", "cpu"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert read_checkpoint(out / "checkpoints" / "last.pt")["step"] == 9
    assert result.stdout.count("done: step 9/9") == 1  # rank 0 only


def test_sample_renders_k_grasps_of_a_mesh(tmp_path, monkeypatch):
    import trimesh

    mano = mano_layer()[0]
    items = items_from_rows(annotated_rows(n=3, affordpose=0, other_split=0), mano, fake_embed, num_points=64)
    result = train_grasp_model(items, mano, preset_config("tiny", steps=2, num_points=64, device="cpu"),
                               tmp_path / "run")
    trimesh.creation.icosphere(subdivisions=2, radius=0.04).export(tmp_path / "ball.obj")
    monkeypatch.setattr(tasks.grasp.data, "sentence_embedder", lambda: fake_embed)
    out = tmp_path / "grasps.png"
    args = ["sample", "--checkpoint", str(result.model_path), "--object", str(tmp_path / "ball.obj"),
            "--instruction", "Lift the ball", "-n", "2", "--out", str(out), "--device", "cpu", "--seed", "3"]
    run = runner.invoke(app, args)
    assert run.exit_code == 0, run.output
    assert "2 grasps in" in run.output and out.read_bytes()[:4] == b"\x89PNG"
    first = np.load(out.with_suffix(".npz"))
    assert first["verts"].shape == (2, 778, 3) and first["mano"].shape == (2, 61)
    assert runner.invoke(app, args).exit_code == 0
    np.testing.assert_array_equal(np.load(out.with_suffix(".npz"))["mano"], first["mano"])  # same seed, same grasps
