import hashlib

import numpy as np
import pytest

from models.point_bert_checkpoint import load_checkpoint
from schemas.affordance import AFFORDANCES
from schemas.rows import PseudoLabel
from tasks.pseudo_label.classifier_config import TrainConfig
from tasks.pseudo_label.classifier_data import Clouds
from tasks.pseudo_label.classifier_model import predict_logits
from tasks.pseudo_label.classifier_train import train_classifier
from tasks.pseudo_label.labelling import label_rows, measure_rules

pytestmark = pytest.mark.slow


def _clouds(n: int, seed: int) -> Clouds:
    """Two easy classes: a 'hand' blob above (class 4, wrap-grasp) or below (class 6, support) a sphere."""
    rng = np.random.default_rng(seed)
    points, labels = [], []
    for i in range(n):
        sphere = rng.normal(size=(768, 3))
        sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
        label = (4, 6)[i % 2]
        blob = rng.normal(scale=0.2, size=(256, 3)) + np.array([0.0, 0.0, 1.4 if label == 4 else -1.4])
        points.append(np.concatenate([sphere, blob]).astype(np.float32))
        labels.append(label)
    return Clouds([f"toy-{i:016x}" for i in range(n)], ["ball"] * n, np.stack(points), np.array(labels))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("classifier")
    return train_classifier(_clouds(24, 0), _clouds(8, 1), TrainConfig(epochs=4, batch_size=8, seed=0), out), out


def test_training_runs_and_saves_a_content_addressed_checkpoint(trained):
    result, _ = trained
    assert len(result.history) == 4 and all(np.isfinite(h["train_loss"]) for h in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    digest = hashlib.sha256(result.checkpoint.read_bytes()).hexdigest()
    assert digest == result.checkpoint_sha256 and result.checkpoint.name == f"point_bert-{digest[:12]}.pt"


def test_inference_is_deterministic_and_survives_reload(trained):
    result, _ = trained
    clouds = _clouds(6, 2)
    first = predict_logits(result.model, clouds.points)
    np.testing.assert_array_equal(first, predict_logits(result.model, clouds.points))
    reloaded, _ = load_checkpoint(result.checkpoint)
    np.testing.assert_allclose(predict_logits(reloaded, clouds.points), first, atol=1e-5)


def test_label_rows_carry_rule_score_and_checkpoint(trained):
    result, _ = trained
    clouds = _clouds(6, 3)
    logits = predict_logits(result.model, clouds.points)
    val_logits = np.eye(9)[np.repeat([4, 6], 5)] * 8.0  # confident and right: the statistics are well defined
    measurement = measure_rules(val_logits, np.repeat([4, 6], 5), logits, clouds.labels)
    rows = label_rows(clouds, ["toy"] * 6, logits, "class_conditional", measurement.stats, 3.0, 0,
                      result.checkpoint_sha256)
    assert [PseudoLabel.model_validate(r.model_dump()).sample_id for r in rows] == clouds.sample_ids
    assert all(r.predicted == AFFORDANCES[int(np.argmax(logits[i]))] for i, r in enumerate(rows))
    assert all(r.accepted == (r.score >= r.threshold) for r in rows)
    assert {r.rule for r in rows} == {"class_conditional(k=3)"}


def test_bad_training_input_is_refused(tmp_path):
    clouds = _clouds(4, 0)
    with pytest.raises(ValueError, match="1024"):
        train_classifier(Clouds(clouds.sample_ids, clouds.categories, clouds.points[:, :512], clouds.labels),
                         clouds, TrainConfig(epochs=1), tmp_path)
    with pytest.raises(ValueError, match="preset"):
        TrainConfig(preset="huge")


def test_measure_rules_falls_back_when_statistics_cannot_be_fitted():
    val_logits = np.zeros((6, 9))
    val_logits[:, 1] = 5.0  # always predicts class 1, but the truth is class 2: no correct prediction
    test_logits = np.eye(9)[[4, 4, 6]] * 10.0
    measurement = measure_rules(val_logits, np.full(6, 2), test_logits, np.array([4, 4, 6]))
    assert measurement.stats is None and list(measurement.reports) == ["logit_zscore"]
    assert measurement.choice.rule == "logit_zscore" and "could not be fitted" in measurement.choice.reason


def test_training_without_validation_samples_keeps_the_last_epoch(tmp_path):
    clouds = _clouds(6, 0)
    empty = clouds.subset(np.array([], dtype=np.int64))
    result = train_classifier(clouds, empty, TrainConfig(epochs=2, batch_size=6), tmp_path)
    assert result.best_epoch == 2 and all(np.isnan(h["val_acc"]) for h in result.history)


def test_load_trained_names_the_missing_file(tmp_path):
    from tasks.pseudo_label.classifier_model import load_trained

    with pytest.raises(ValueError, match=r"checkpoint .*nope\.pt: no such file"):
        load_trained(tmp_path / "nope.pt")


def test_loaded_checkpoint_labels_exactly_as_the_trained_model(trained):
    from tasks.pseudo_label.classifier_model import load_trained

    result, _ = trained
    loaded = load_trained(result.checkpoint, device="cpu")
    clouds = _clouds(5, 4)
    assert loaded.checkpoint_sha256 == result.checkpoint_sha256 and loaded.history == []
    np.testing.assert_allclose(predict_logits(loaded.model, clouds.points), predict_logits(result.model, clouds.points),
                               atol=1e-5)


def test_too_few_labelled_samples_for_a_val_or_test_split_are_refused_by_name(tmp_path):
    """Two samples per class reach no val or test split (a class needs 3): the stage says so, with the counts,
    instead of failing on an empty accuracy (annotate then skips self-training with this reason)."""
    from tasks.pseudo_label.classifier_config import TrainConfig
    from tasks.pseudo_label.stage import NoLabelledSamples, train_and_evaluate

    points = np.random.default_rng(0).normal(size=(4, 64, 3)).astype(np.float32)
    clouds = Clouds([f"toy-{i:016x}" for i in range(4)], ["mug"] * 4, points, np.array([0, 0, 1, 1]))
    with pytest.raises(NoLabelledSamples, match=r"leave the val and test split\(s\) empty: 4 samples.*3 or more"):
        train_and_evaluate(clouds, TrainConfig(epochs=1), tmp_path, k=3.0)


def test_a_class_seen_once_among_thousands_does_not_outweigh_the_rest():
    # A self-training cycle's merged labels: thousands per class, and one sample a reviewer relabelled to a class
    # nothing else has. Uncapped n / (K n_c) gave that sample 4969 / (7 x 1) = 710 times a row's weight.
    from tasks.pseudo_label.classifier_train import MAX_CLASS_WEIGHT, _class_weights

    labels = np.concatenate([np.repeat([1, 2, 3, 4, 5, 6], 828), [7]])
    weights = _class_weights(labels, 9).numpy()
    assert weights[7] == MAX_CLASS_WEIGHT
    assert np.allclose(weights[1:7], len(labels) / (7 * 828))  # the common classes keep n / (K n_c)
    assert weights[0] == weights[8] == 1.0  # absent


def test_a_chunk_whose_samples_are_all_merged_labels_nothing(trained):
    from tasks.pseudo_label.cloud_pool import label_pool_part

    result, _ = trained
    clouds = _clouds(4, 5)
    assert label_pool_part(result, clouds, "logit_zscore", None, 3.0, 1, skip=clouds.sample_ids) == []
    assert len(label_pool_part(result, clouds, "logit_zscore", None, 3.0, 1, skip=clouds.sample_ids[:2])) == 2
