import re

import numpy as np
import pytest

from schemas.affordance import affordance_index
from schemas.rows import Sample
from tasks.pseudo_label import classifier_data
from tasks.pseudo_label.classifier_data import CLOUD_SCALE, clouds_from_rows, sample_cloud, stratified_split
from tests.factories import sample_dicts


def _rows(n, with_hand=True):
    rows = []
    for row in sample_dicts(n, num_points=64):
        if with_hand:
            row["hand_verts"] = np.random.default_rng(len(rows)).normal(scale=0.03, size=(778, 3))
        rows.append(Sample.model_validate(row))
    return rows


def test_sample_cloud_is_fixed_size_and_scaled():
    row = _rows(1)[0]
    cloud = sample_cloud(row, 128)
    assert cloud.shape == (128, 3) and cloud.dtype == np.float32
    raw = np.concatenate([row.hand_verts, row.object_points])
    # Every cloud point is a (scaled) hand vertex or object point.
    distances = np.linalg.norm(cloud[:, None] * CLOUD_SCALE - raw[None], axis=-1).min(1)
    assert distances.max() < 1e-6


def test_rows_without_hand_go_to_the_error_callback():
    rows = _rows(3) + _rows(1, with_hand=False)
    failed = []
    clouds = clouds_from_rows(rows, 64, on_error=lambda row, exc: failed.append((row.sample_id, str(exc))))
    assert len(clouds) == 3 and len(failed) == 1 and "no hand_verts" in failed[0][1]
    assert clouds.labels.tolist() == [affordance_index(r.affordance) for r in rows[:3]]
    with pytest.raises(ValueError, match="no hand_verts"):
        clouds_from_rows(rows, 64)


def test_stratified_split_keeps_class_proportions_and_is_disjoint():
    labels = np.repeat(np.arange(8), 20)
    parts = stratified_split(labels, seed=0)
    every = np.concatenate(list(parts.values()))
    assert sorted(every.tolist()) == list(range(len(labels)))
    for name, share in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        counts = np.bincount(labels[parts[name]], minlength=8)
        assert (np.abs(counts - 20 * share) <= 1).all(), (name, counts)
    assert stratified_split(labels, seed=0)["test"].tolist() == parts["test"].tolist()
    with pytest.raises(ValueError, match="fractions"):
        stratified_split(labels, seed=0, fractions=(0.5, 0.5, 0.5))


def _broken(row: Sample, **fields) -> Sample:
    """A row with fields the schema would refuse (as an older or foreign writer might have left them)."""
    return Sample.model_construct(**{**row.model_dump(), **fields})


@pytest.mark.parametrize(("fields", "message"), [
    ({"hand_verts": np.full((778, 3), np.nan)}, "hand_verts contains NaN"),
    ({"hand_verts": np.zeros((778, 2))}, r"hand_verts must be \(N, 3\)"),
    ({"hand_verts": np.zeros((0, 3))}, "hand_verts is empty"),
    ({"object_points": np.zeros((0, 3))}, "object_points is empty"),
    ({"affordance": "juggle"}, "unknown affordance 'juggle'"),
])
def test_bad_rows_are_reported_by_sample_and_field_and_the_rest_goes_on(fields, message):
    good = _rows(3)
    bad = _broken(_rows(1)[0], sample_id="affordpose-badbadbadbadbad0", **fields)
    failed = []
    clouds = clouds_from_rows([good[0], bad, *good[1:]], 64, on_error=lambda row, exc: failed.append((row, exc)))
    assert clouds.sample_ids == [r.sample_id for r in good]
    assert [row.sample_id for row, _ in failed] == [bad.sample_id]
    assert re.search(message, str(failed[0][1]))
    with pytest.raises(ValueError, match=message):
        clouds_from_rows([bad], 64)


def test_rows_are_read_in_batches_and_each_cloud_is_its_sample_cloud(monkeypatch):
    monkeypatch.setattr(classifier_data, "ROW_BATCH", 4)
    rows = _rows(10)
    rows[6] = _broken(rows[6], hand_verts=np.full((778, 3), np.nan))
    read, failed = [], []

    def stream():
        for row in rows:
            read.append(row.sample_id)
            yield row

    def reject(row, exc):
        failed.append((row.sample_id, str(exc), len(read)))

    clouds = clouds_from_rows(stream(), 64, on_error=reject)
    assert failed == [(rows[6].sample_id, f"sample {rows[6].sample_id}: hand_verts contains NaN or inf", 8)]
    assert clouds.sample_ids == [r.sample_id for i, r in enumerate(rows) if i != 6]
    expected = np.stack([sample_cloud(r, 64) for i, r in enumerate(rows) if i != 6])
    np.testing.assert_array_equal(clouds.points, expected)
    assert clouds.points.dtype == np.float32
