"""The tiny preset end to end on CPU: AE -> diffusion -> DAM on a small overfit-able set, losses finite and
falling in every stage, frozen modules stay frozen, logs and curves written, a reloaded checkpoint samples exactly
what the trained model samples for a seed, a run stopped and resumed ends with the weights of an uninterrupted
one, and configs refuse bad values by name. One gpu-marked test runs the
paper preset for a few steps under bf16 autocast."""

import numpy as np
import pytest
import torch

from tasks.grasp.config import PRESETS, STAGES, GraspTrainConfig, preset_config
from tasks.grasp.data import GraspDataset, items_from_rows, mano_layer
from tasks.grasp.losses import STAGE_LOSSES, dam_loss
from tasks.grasp.model import GraspModels, read_checkpoint
from tasks.grasp.sample import GraspGenerator, load_grasp_generator, sample_grasps
from tasks.grasp.train import TrainingDiverged, _optimiser, train_grasp_model
from tasks.grasp.train_log import read_log
from tests.grasp_factories import annotated_rows, fake_embed, single_thread


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()
K = 10  # steps averaged at each end of a stage


@pytest.fixture(scope="module")
def mano():
    return mano_layer()[0]


@pytest.fixture(scope="module")
def items(mano):
    return items_from_rows(annotated_rows(n=4, affordpose=0, other_split=0), mano, fake_embed, num_points=128)


@pytest.fixture(scope="module")
def trained(items, mano, tmp_path_factory):
    config = preset_config("tiny", batch_size=4, num_points=128, log_every=1, checkpoint_every=40, seed=0)
    return train_grasp_model(items, mano, config, tmp_path_factory.mktemp("grasp")), config


def test_every_stage_trains_with_finite_falling_losses(trained):
    result, config = trained
    assert result.steps_done == result.total_steps == config.total_steps == len(result.history)
    for stage in STAGES:
        losses = np.array([r["loss"] for r in result.history if r["stage"] == stage])
        assert len(losses) >= 2 * K and np.isfinite(losses).all(), stage
        assert losses[-K:].mean() < losses[:K].mean(), (stage, losses[:K].mean(), losses[-K:].mean())
    dam = [r for r in result.history if r["stage"] == "dam"][-1]
    assert {"param", "mesh", "consist", "cmap", "penetr"} <= set(dam)


def test_logs_curves_and_checkpoints_are_written(trained):
    result, config = trained
    log = read_log(result.log_csv)
    assert [r["step"] for r in log] == list(range(1, config.total_steps + 1))
    assert log[-1]["stage"] == "dam" and log[0]["stage"] == "autoencoder"
    assert result.loss_curve.read_bytes()[:4] == b"\x89PNG"
    raw = read_checkpoint(result.checkpoint)
    assert raw["step"] == config.total_steps and raw["model_config"] == PRESETS.from_name("tiny").model.to_dict()
    assert not list(result.checkpoint.parent.glob(".*tmp"))  # no temporary file left behind


def test_reloaded_checkpoint_samples_identically_for_a_seed(trained, items):
    result, config = trained
    live = GraspGenerator(result.models, config, {})
    args = (items.object_points[0], items.affordance_map[0], items.text_embeddings[items.text_ids[0]], 3)
    a = sample_grasps(live, *args, seed=7)
    for path in (result.model_path, result.checkpoint):
        reloaded = load_grasp_generator(path, device="cpu")
        b = sample_grasps(reloaded, *args, seed=7)
        np.testing.assert_array_equal(a.mano, b.mano)
        np.testing.assert_array_equal(a.verts, b.verts)
    c = sample_grasps(live, *args, seed=8)
    assert a.verts.shape == (3, 778, 3) and np.isfinite(a.verts).all()
    assert not np.array_equal(a.mano, c.mano) and not np.array_equal(a.mano[0], a.mano[1])


def test_a_finished_run_resumes_as_done(trained, items, mano):
    result, config = trained
    again = train_grasp_model(items, mano, config, result.out_dir)
    assert again.resumed_from == config.total_steps and again.history == result.history


@pytest.mark.parametrize("stop_at", [12, 17, 30])  # at the AE/diffusion boundary, mid diffusion, mid DAM
def test_stopping_and_resuming_trains_exactly_as_one_run(items, mano, tmp_path, stop_at):
    config = preset_config("tiny", steps=12, batch_size=4, num_points=128, checkpoint_every=100)
    whole = train_grasp_model(items, mano, config, tmp_path / "whole")
    part = train_grasp_model(items, mano, config, tmp_path / "parts", stop_at=stop_at)
    assert part.steps_done == stop_at and not part.model_path.exists()
    assert read_checkpoint(part.checkpoint)["step"] == stop_at
    rest = train_grasp_model(items, mano, config, tmp_path / "parts")
    assert rest.resumed_from == stop_at and rest.steps_done == 36
    for module, weights in whole.models.trained_state().items():
        resumed = rest.models.trained_state()[module]
        assert all(torch.equal(weights[name], resumed[name]) for name in weights), module


def test_a_diverging_loss_stops_training_naming_step_and_stage_and_keeps_the_last_good_checkpoint(
        items, mano, tmp_path, monkeypatch):
    config = preset_config("tiny", steps=12, batch_size=4, num_points=128, log_every=5, checkpoint_every=14)
    healthy, calls = STAGE_LOSSES["diffusion"], []

    def blows_up(models, batch, cfg):  # diffusion's 4th step on (global step 16) returns inf
        calls.append(1)
        terms = healthy(models, batch, cfg)
        return terms | {"loss": terms["loss"] * float("inf")} if len(calls) >= 4 else terms
    monkeypatch.setitem(STAGE_LOSSES, "diffusion", blows_up)
    with pytest.raises(TrainingDiverged, match=r"stage diffusion: loss (inf|nan) at step 16; training stopped and the "
                                               r"last good checkpoint .*last.pt is kept"):
        train_grasp_model(items, mano, config, tmp_path)
    saved = read_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert saved["step"] == 14  # the checkpoint before the blow-up, not one of the diverged model
    assert not (tmp_path / "grasp_model.pt").exists()


def test_dam_training_leaves_the_diffusion_model_and_autoencoder_frozen(items, mano):
    config = preset_config("tiny", num_points=128)
    models = GraspModels(config.model_config(), mano)
    _optimiser(models, "dam", config)
    batch = GraspDataset(items).batch(torch.arange(4))
    dam_loss(models, batch, config)["loss"].backward()
    assert all(p.grad is None for p in [*models.ae.parameters(), *models.diffusion.parameters()])
    assert all(p.grad is not None for p in models.dam.parameters())


def test_configs_refuse_bad_values_by_name():
    for field, value in (("preset", "huge"), ("batch_size", 0), ("lr", 2.0), ("dam_heads", 3),
                         ("dam_noise", 0.0), ("w_penetr", -1.0), ("num_points", 4)):
        with pytest.raises(ValueError, match=field):
            GraspTrainConfig(**{field: value})
    with pytest.raises(ValueError, match="unknown"):
        preset_config("tiny", epochs=3)
    paper = preset_config("paper", steps=5, dam_heads=1)
    assert (paper.ae_steps, paper.diffusion_steps, paper.dam_steps, paper.num_points) == (5, 5, 5, 3000)
    assert paper.model_config().dam.heads == 1 and paper.model_config().ae.latent_dim == 768
    assert paper.vertex_stride == 1 and preset_config("tiny").vertex_stride == 4  # tiny: every 4th hand vertex


def test_resuming_with_other_stage_lengths_is_refused(trained, items, mano):
    result, _ = trained
    with pytest.raises(ValueError, match="stage steps"):
        train_grasp_model(items, mano, preset_config("tiny", steps=3, num_points=128), result.out_dir)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_paper_preset_few_steps_bf16_on_cuda(mano, tmp_path):
    items = items_from_rows(annotated_rows(n=16, affordpose=0, other_split=0, num_points=3000), mano, fake_embed,
                            num_points=3000)
    config = preset_config("paper", steps=3, batch_size=16, log_every=1, device="cuda")
    result = train_grasp_model(items, mano, config, tmp_path)
    assert np.isfinite([r["loss"] for r in result.history]).all() and result.steps_done == 9
    grasps = sample_grasps(load_grasp_generator(result.model_path, "cuda"), items.object_points[0],
                           items.affordance_map[0], items.text_embeddings[0], 4, seed=0)
    assert np.isfinite(grasps.verts).all()


def test_small_preset_builds_and_takes_a_training_step_in_every_stage(items, mano, tmp_path):
    config = preset_config("small", steps=1, batch_size=2, num_points=128, log_every=1)
    models = GraspModels(config.model_config(), mano)
    assert models.config.ae.latent_dim == 64 and models.config.dam.heads == 4
    params = {s: sum(p.numel() for p in models.stage_module(s).parameters()) for s in STAGES}
    tiny = GraspModels(preset_config("tiny").model_config(), mano)
    assert all(params[s] > sum(p.numel() for p in tiny.stage_module(s).parameters()) for s in STAGES)
    result = train_grasp_model(items, mano, config, tmp_path)
    assert [r["stage"] for r in result.history] == list(STAGES)
    assert np.isfinite([r["loss"] for r in result.history]).all()
    assert read_checkpoint(result.model_path)["train_config"]["preset"] == "small"


def test_a_warm_start_trains_only_the_dam_on_the_source_autoencoder_and_diffusion(trained, items, mano, tmp_path):
    source, config = trained
    other = preset_config("tiny", batch_size=4, num_points=128, log_every=1, checkpoint_every=40, seed=0, dam_heads=1)
    result = train_grasp_model(items, mano, other, tmp_path, init_from=source.checkpoint)
    assert result.resumed_from == config.ae_steps + config.diffusion_steps
    assert {r["stage"] for r in result.history if r["step"] > result.resumed_from} == {"dam"}
    mine, theirs = read_checkpoint(result.model_path)["state"], read_checkpoint(source.model_path)["state"]
    for module in ("ae", "diffusion"):
        assert all(torch.equal(mine[module][k], theirs[module][k]) for k in theirs[module])
    assert read_checkpoint(result.model_path)["model_config"]["dam"]["heads"] == 1


def test_a_warm_start_or_resume_from_another_preset_is_refused_naming_the_checkpoint(trained, items, mano, tmp_path):
    source, _ = trained
    small = preset_config("small", steps=2, num_points=128)
    with pytest.raises(ValueError, match=f"checkpoint {source.checkpoint}: its ae sizes differ"):
        train_grasp_model(items, mano, small, tmp_path / "warm", init_from=source.checkpoint)
    with pytest.raises(ValueError, match=f"checkpoint {source.checkpoint}: model sizes differ from preset 'small'"):
        train_grasp_model(items, mano, small, source.out_dir)
