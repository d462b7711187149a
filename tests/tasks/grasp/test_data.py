"""Grasp training data from an annotated table: rows without MANO parameters and of other splits are counted and
skipped, invalid rows named, arrays have the documented shapes, hands are the MANO layer's, each distinct
instruction is embedded once, resampling is deterministic, and ranks split the items disjointly."""

import numpy as np
import pytest
import torch

from models.hand_autoencoder import split_mano
from tasks.grasp.data import GraspDataset, items_from_rows, load_grasp_items, mano_layer, rank_indices, resample
from tests.grasp_factories import annotated_rows, fake_embed, single_thread, write_annotated


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()


@pytest.fixture(scope="module")
def mano():
    return mano_layer()[0]


def test_table_to_items_counts_what_it_skips(tmp_path, mano):
    write_annotated(tmp_path / "annotated", n=6, affordpose=3, other_split=2)
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return fake_embed(texts)
    items = load_grasp_items(tmp_path / "annotated", mano, embed, num_points=64)
    assert (items.rows_read, len(items), items.skipped_no_mano, items.skipped_split) == (11, 6, 3, 2)
    assert "6 grasps with MANO parameters used; 3 without MANO parameters" in items.summary()
    assert len(calls) == 1 and sorted(calls[0]) == sorted(set(calls[0])) and len(calls[0]) == 3
    assert items.mano.shape == (6, 61) and items.hand_verts.shape == (6, 778, 3)
    assert items.object_points.shape == items.object_normals.shape == (6, 64, 3)
    assert items.affordance_map.shape == (6, 64) and items.text_embeddings.shape == (3, 384)
    assert items.affordance.dtype == np.int64 and set(items.affordance) <= set(range(9))


def test_hands_are_the_mano_layers_output_in_metres(mano):
    rows = annotated_rows(n=3, affordpose=0, other_split=0)
    items = items_from_rows(rows, mano, fake_embed, num_points=32)
    pose, betas, trans = split_mano(torch.from_numpy(items.mano))
    torch.testing.assert_close(pose[1], torch.from_numpy(rows[1].hand_pose))
    verts, _ = mano(pose, betas, trans)
    np.testing.assert_allclose(items.hand_verts, verts.numpy() / 1000, atol=1e-6)
    assert np.abs(items.hand_verts).max() < 0.5  # metres, not millimetres


def test_invalid_rows_are_named_and_all_splits_can_be_read(mano):
    rows = annotated_rows(n=3, affordpose=0, other_split=1)
    broken = rows[0].model_copy(update={"hand_trans": np.array([np.nan, 0, 0], np.float32)})
    items = items_from_rows([broken, *rows[1:]], mano, fake_embed, num_points=32, splits=None)
    assert len(items) == 3 and items.skipped_invalid == [rows[0].sample_id]


def test_resampling_is_deterministic_and_repeats_only_when_short():
    points, values = np.arange(30, dtype=np.float32).reshape(10, 3), np.arange(10, dtype=np.float32)
    a = resample(points, values, 6, np.random.default_rng(0))
    b = resample(points, values, 6, np.random.default_rng(0))
    assert np.array_equal(a[0], b[0]) and len(set(a[1])) == 6
    np.testing.assert_array_equal(a[0][:, 0] / 3, a[1])  # each point keeps its own value
    assert resample(points, values, 25, np.random.default_rng(0))[0].shape == (25, 3)


def test_dataset_items_and_batches_agree(mano):
    items = items_from_rows(annotated_rows(n=4, affordpose=0, other_split=0), mano, fake_embed, num_points=32)
    dataset = GraspDataset(items)
    batch = dataset.batch(torch.tensor([2, 0]))
    assert len(dataset) == 4 and batch["text"].shape == (2, 384)
    for name, value in dataset[2].items():
        assert torch.equal(batch[name][0], value)


@pytest.mark.parametrize("count,world", [(10, 1), (10, 3), (2, 4)])
def test_rank_indices_are_disjoint_and_cover(count, world):
    parts = [rank_indices(count, rank, world) for rank in range(world)]
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(count))
    with pytest.raises(ValueError, match="rank"):
        rank_indices(count, world, world)
