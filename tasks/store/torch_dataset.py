"""A table as a torch IterableDataset: shards split across DataLoader workers and distributed ranks."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from schemas.arrow_convert import arrow_to_arrays
from schemas.arrow_schema import array_specs
from schemas.rows import Row
from tasks.store.read import open_table


def shard_slice(num_shards: int, rank: int, world: int, worker: int, workers: int) -> list[int]:
    """Shard indices for one (rank, worker): round-robin over rank*workers + worker, so every shard is
    read exactly once across all ranks and workers."""
    slot, slots = rank * workers + worker, world * workers
    return list(range(slot, num_shards, slots))


class TableIterableDataset(IterableDataset):
    """Yields one dict per row: array fields as torch tensors (float32 / int), other fields as Python values.

    Each (rank, DataLoader worker) reads a disjoint subset of shards. With `shuffle`, the shard order and
    the rows within a shard are shuffled with `seed + epoch` (call `set_epoch` each epoch).
    """

    def __init__(self, path: str | Path, model: type[Row], columns: Sequence[str] | None = None, *,
                 shuffle: bool = False, seed: int = 0, batch_rows: int = 256,
                 transform: Callable[[dict[str, Any]], Any] | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.model = model
        self.columns = list(columns) if columns else None
        self.shuffle = shuffle
        self.seed = seed
        self.batch_rows = batch_rows
        self.transform = transform
        self.epoch = 0
        self._num_rows = open_table(self.path, model).num_rows  # fail early, in the main process

    def __len__(self) -> int:
        return self._num_rows

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[Any]:
        table = open_table(self.path, self.model)
        shards = table.manifest.shards
        info = get_worker_info()
        rank, world = _rank_world()
        order = shard_slice(len(shards), rank, world, info.id if info else 0, info.num_workers if info else 1)
        rng = random.Random(self.seed + self.epoch)
        if self.shuffle:
            rng.shuffle(order)
        specs = array_specs(self.model)
        for index in order:
            rows = list(self._rows(table, shards[index], specs))
            if self.shuffle:
                rng.shuffle(rows)
            for row in rows:
                yield self.transform(row) if self.transform else row

    def _rows(self, table, shard, specs) -> Iterator[dict[str, Any]]:
        for batch in table.iter_batches(self.columns, self.batch_rows, shards=[shard]):
            columns = {}
            for name in batch.schema.names:
                column = batch.column(name)
                if name in specs:
                    columns[name] = [None if a is None else torch.from_numpy(np.array(a))
                                     for a in arrow_to_arrays(column, specs[name])]
                else:
                    columns[name] = column.to_pylist()
            yield from (dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True))


def make_loader(dataset: TableIterableDataset, batch_size: int, num_workers: int = 0, **options: Any) -> DataLoader:
    """A DataLoader whose workers start from a clean forkserver, never a fork of this process.

    Why: once a process has run a Prefect flow, Prefect's log worker leaves a threading at-exit hook that
    fails in any forked child, so forked DataLoader workers die with exit code 1 when they finish.
    """
    if num_workers > 0:
        options.setdefault("multiprocessing_context", "forkserver")
        options.setdefault("persistent_workers", True)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, **options)


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
