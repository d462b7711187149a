"""Affordance-map training at the tiny preset: the loss falls, the text selects the part, checkpoints reload
to identical maps, and bad checkpoints are refused by file name."""

import numpy as np
import pytest
import torch

from models.text_encoder import TextEncoder
from schemas.rows import Sample
from tasks.affordance.config import MapTrainConfig
from tasks.affordance.data import items_from_samples
from tasks.affordance.evaluation import evaluate_maps
from tasks.affordance.inference import TextBank, load_map_model, predict_maps
from tasks.affordance.train import train_map_model
from tests.factories import sample_dicts

WRAP, PRESS = "Wrap your hand around the top of the ball", "Press the bottom of the ball"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rows = sample_dicts(12, num_points=256)
    for row in rows:  # top half wrap-grasp (id 5), bottom half press (id 3)
        row["object_point_labels"] = np.where(row["object_points"][:, 2] > 0, 5, 3).astype(np.int8)
    items = items_from_samples([Sample.model_validate(r) for r in rows])
    texts = {key: [WRAP if key[1] == "wrap-grasp" else PRESS] for key in set(items.item_keys())}
    bank = TextBank([WRAP, PRESS], TextEncoder())
    config = MapTrainConfig(preset="tiny", steps=150, batch_size=8, lr=3e-3, warmup_steps=10, train_points=128,
                            device="cpu")
    out = tmp_path_factory.mktemp("affordance")
    return train_map_model(items, texts, bank, config, out, log_every=25), items, texts, bank


def test_loss_falls_and_the_instruction_picks_the_part(trained) -> None:
    result, items, texts, bank = trained
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 6 and all(np.isfinite(losses)) and losses[-1] < losses[0] - 0.3
    evaluation = evaluate_maps(result.model, items, texts, bank)
    assert np.mean([m.auc for m in evaluation.metrics]) > 0.9
    top = items.points[0][:, 2] > 0
    maps = predict_maps(result.model, np.stack([items.points[0]] * 2), [bank.index[WRAP], bank.index[PRESS]], bank)
    assert maps[0][top].mean() > maps[0][~top].mean() + 0.3  # wrap: the top half
    assert maps[1][~top].mean() > maps[1][top].mean() + 0.3  # press: the bottom half


def test_checkpoint_reloads_to_identical_maps(trained) -> None:
    result, items, _, bank = trained
    assert result.checkpoint.name == f"affordance_net-{result.checkpoint_sha256[:12]}.pt"
    loaded = load_map_model(result.checkpoint, device="cpu")
    ids = [bank.index[WRAP]] * 3
    np.testing.assert_array_equal(predict_maps(result.model, items.points[:3], ids, bank),
                                  predict_maps(loaded.model, items.points[:3], ids, bank))
    assert loaded.checkpoint_sha256 == result.checkpoint_sha256


def test_bad_checkpoints_are_refused_by_file(tmp_path) -> None:
    missing = tmp_path / "none.pt"
    with pytest.raises(ValueError, match=f"checkpoint {missing}: no such file"):
        load_map_model(missing)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match=f"checkpoint {foreign}: not an affordance-map checkpoint"):
        load_map_model(foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=f"checkpoint {garbage}: not a torch file"):
        load_map_model(garbage)


def test_config_bounds_name_the_field() -> None:
    with pytest.raises(ValueError,
                       match="preset 'huge' is not registered; registered: cpu, cpu-large-patch, paper, tiny"):
        MapTrainConfig(preset="huge")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        MapTrainConfig(steps=0)
    with pytest.raises(ValueError, match="focal_alpha must be in"):
        MapTrainConfig(focal_alpha=2.0)
