import pytest
import torch

from schemas.rows import Sample
from tasks.store.torch_dataset import TableIterableDataset, make_loader, shard_slice
from tests.factories import make_table, sample_dicts


def test_shard_slice_covers_every_shard_once():
    for shards in (0, 1, 7, 16):
        for world in (1, 2, 3):
            for workers in (1, 2, 4):
                seen = [i for r in range(world) for w in range(workers) for i in shard_slice(shards, r, world, w,
                                                                                             workers)]
                assert sorted(seen) == list(range(shards))


def test_rows_come_out_as_tensors(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=5, rows_per_shard=2)
    dataset = TableIterableDataset(path, Sample, columns=["sample_id", "object_points", "hand_pose", "hand_verts"])
    rows = list(dataset)
    assert len(rows) == len(dataset) == 5
    assert rows[0]["object_points"].dtype == torch.float32 and rows[0]["object_points"].shape == (32, 3)
    assert rows[0]["hand_pose"].shape == (48,) and rows[0]["hand_verts"] is None
    assert set(rows[0]) == {"sample_id", "object_points", "hand_pose", "hand_verts"}


@pytest.mark.server
def test_loader_workers_read_each_row_exactly_once_in_a_prefect_process(prefect_harness, tables_dir):
    """Workers in a process that runs Prefect: a plain fork would die at exit (see make_loader)."""
    from prefect import flow

    @flow
    def touch() -> int:
        return 1

    assert touch() == 1
    path = tables_dir / "samples"
    make_table(path, n=23, rows_per_shard=3)
    dataset = TableIterableDataset(path, Sample, columns=["sample_id", "hand_pose"], shuffle=True, seed=1)
    loader = make_loader(dataset, batch_size=4, num_workers=2)
    for _epoch in range(2):  # persistent workers serve the second epoch too
        ids = [sid for batch in loader for sid in batch["sample_id"]]
        assert sorted(ids) == sorted(r["sample_id"] for r in sample_dicts(23))


def test_shuffle_depends_on_seed_and_epoch(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=20, rows_per_shard=4)
    dataset = TableIterableDataset(path, Sample, columns=["sample_id"], shuffle=True, seed=3)
    first = [r["sample_id"] for r in dataset]
    assert first == [r["sample_id"] for r in dataset]
    dataset.set_epoch(1)
    second = [r["sample_id"] for r in dataset]
    assert sorted(first) == sorted(second) and first != second
