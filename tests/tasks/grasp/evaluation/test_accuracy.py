"""ACC: share of generated grasps the classifier labels with the requested affordance, read through the same
cloud pipeline as pseudo-labelling."""

import numpy as np
import pytest
import torch

from models.point_bert import PointBertConfig, PointTransformer
from models.point_bert_checkpoint import save_checkpoint
from schemas.affordance import AFFORDANCES, affordance_index
from tasks.grasp.evaluation.accuracy import accuracy, affordance_accuracy, grasp_clouds
from tasks.pseudo_label.classifier_data import sample_cloud
from tasks.pseudo_label.classifier_model import load_trained, predict_logits
from tests.factories import samples

TINY = PointBertConfig(trans_dim=32, depth=1, drop_path_rate=0.0, num_heads=2, group_size=8, num_group=8,
                       encoder_dims=32, num_points=64)


def hands_and_objects(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    hands = [rng.normal(scale=0.03, size=(778, 3)) + np.array([0.06, 0.0, 0.0]) for _ in range(n)]
    objects = [rng.uniform(-0.04, 0.04, size=(200, 3)) for _ in range(n)]
    return hands, objects


def side_classifier(points: np.ndarray) -> np.ndarray:
    """A stub: 'lift' when the cloud's centroid has x > 0, else 'press'. (N, P, 3) -> (N, 9) logits."""
    logits = np.zeros((len(points), len(AFFORDANCES)))
    right = points[:, :, 0].mean(1) > 0
    logits[right, affordance_index("lift")] = 1.0
    logits[~right, affordance_index("press")] = 1.0
    return logits


def test_accuracy_known_answers():
    assert accuracy(["lift", "press"], ["lift", "press"]) == 100.0
    assert accuracy(["lift", "press", "lift", "lift"], ["Lift", "lift", "twist", "lift"]) == 50.0
    assert accuracy(["wrap-grasp"], ["Wrap_grasp"]) == 100.0  # dataset spellings are accepted


def test_stub_classifier_predicts_the_hand_side():
    hands, objects = hands_and_objects(4)
    hands[2] = hands[2] - [0.15, 0.0, 0.0]  # this hand on the -x side
    result = affordance_accuracy(side_classifier, hands, objects, ["lift"] * 4, num_points=64)
    assert result.predicted == ["lift", "lift", "press", "lift"]
    assert result.acc_percent == 75.0


def test_checkpoint_predictions_match_the_pseudo_labelling_path(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_checkpoint(PointTransformer(TINY), TINY, path)
    trained = load_trained(path, device="cpu")
    hands, objects = hands_and_objects(5, seed=1)
    rows = [row.model_copy(update={"hand_verts": h, "object_points": o})
            for row, h, o in zip(samples(5), hands, objects, strict=True)]
    expected = predict_logits(trained.model, np.stack([sample_cloud(row, TINY.num_points) for row in rows]))
    expected_names = [AFFORDANCES[i] for i in expected.argmax(1)]
    result = affordance_accuracy(trained, hands, objects, expected_names)  # num_points from the checkpoint
    assert result.predicted == expected_names and result.acc_percent == 100.0


def test_clouds_are_in_network_units():
    hands, objects = hands_and_objects(2)
    clouds = grasp_clouds(hands, objects, 64)
    assert clouds.shape == (2, 64, 3) and clouds.dtype == np.float32
    assert np.abs(clouds).max() > 0.5  # divided by CLOUD_SCALE (0.15 m): metres would stay below 0.2


def test_bad_inputs_are_rejected():
    hands, objects = hands_and_objects(2)
    with pytest.raises(ValueError, match="requested"):
        accuracy(["lift"], ["lift", "press"])
    with pytest.raises(ValueError, match="at least one"):
        accuracy([], [])
    with pytest.raises(ValueError, match="unknown affordance"):
        accuracy(["fly"], ["lift"])
    with pytest.raises(ValueError, match="num_points"):
        affordance_accuracy(side_classifier, hands, objects, ["lift", "lift"])
    with pytest.raises(ValueError, match="logits of shape"):
        affordance_accuracy(lambda p: np.zeros((len(p), 3)), hands, objects, ["lift", "lift"], num_points=16)
    with pytest.raises(ValueError, match="2 hands but 1 objects"):
        grasp_clouds(hands, objects[:1], 16)
