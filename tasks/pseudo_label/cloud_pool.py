"""The target samples' classifier clouds, prepared in chunks and kept on disk: self-training labels them chunk by
chunk each cycle and holds only their ids and categories in memory.

Cloud preparation (farthest-point sampling of hand and object) is the larger part of labelling a sample, so a
chunk's clouds are committed under a content key (its input shards, the point count, the cloud version): a re-run
after a crash, or the next full run on unchanged inputs, prepares only the chunks it has not prepared. Labelling a
cycle loads one chunk's clouds at a time on the task's worker and commits that chunk's pseudo-label rows (stage
`pseudo_labels`, keyed by the cloud chunk, the classifier, the rule and the ids merged so far); the labels table is
published from those files, so no label row comes back to the flow: a cycle holds counts, not rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas.rows import PseudoLabel, Reject, Sample
from tasks.pseudo_label.classifier_data import Clouds, clouds_from_rows
from tasks.pseudo_label.classifier_model import TrainResult, load_trained, predict_logits
from tasks.pseudo_label.confidence_filter import ClassStats
from tasks.pseudo_label.labelling import STAGE_VERSION, label_rows
from tasks.runtime.model_cache import cached
from tasks.runtime.threads import worker_threads
from tasks.store.chunks import ChunkStore, InputChunk, plan_chunks
from tasks.store.read import open_table

STAGE = "classifier_clouds"
LABEL_STAGE = "pseudo_labels"
CLOUD_VERSION = "joint-cloud-1"  # raise when joint_cloud's sampling or scaling changes


@dataclass(frozen=True)
class CloudPool:
    """Committed cloud chunks of the target tables, and the ids and categories of their clouds (chunk order)."""

    store_root: str
    chunks: tuple[InputChunk, ...]
    sample_ids: tuple[str, ...]
    categories: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.sample_ids)

    def chunk_clouds(self, chunk: InputChunk) -> Clouds:
        return load_chunk_clouds(self.store_root, chunk)

    def load(self, ids: Collection[str]) -> Clouds:
        """The clouds of `ids` (in pool order), read chunk by chunk: memory for those clouds only."""
        wanted = set(ids)
        parts = []
        for chunk in self.chunks:
            clouds = self.chunk_clouds(chunk)
            parts.append(clouds.subset(np.flatnonzero([i in wanted for i in clouds.sample_ids])))
        return _concat(parts)


def plan_cloud_chunks(tables: Sequence[str | Path], num_points: int, shards_per_chunk: int) -> list[InputChunk]:
    return plan_chunks(STAGE, tables, shards_per_chunk, {"version": CLOUD_VERSION, "num_points": num_points})


def cloud_chunk(chunk: InputChunk, store_root: str, num_points: int) -> dict:
    """Prepare one chunk's clouds; a sample that cannot become a cloud is a reject (stage pseudo_label)."""
    worker_threads()
    start = time.perf_counter()
    rejects: list[Reject] = []

    def reject(row: Sample, exc: Exception) -> None:
        rejects.append(Reject(sample_id=row.sample_id, stage_version=STAGE_VERSION, stage="pseudo_label",
                              source=chunk.table, reason=str(exc), dataset=row.dataset))

    clouds = clouds_from_rows(open_table(chunk.table, Sample).iter_rows(shards=chunk.shards), num_points,
                              on_error=reject)
    return ChunkStore(store_root, STAGE).commit(
        chunk.key, {"rejects": (rejects, Reject)},
        {"chunk": chunk.index, "table": chunk.table, "sample_ids": clouds.sample_ids,
         "categories": clouds.categories, "clouds": len(clouds), "rejected": len(rejects),
         "seconds": time.perf_counter() - start},
        arrays={"points": clouds.points, "labels": clouds.labels})


def load_chunk_clouds(store_root: str, chunk: InputChunk) -> Clouds:
    store = ChunkStore(store_root, STAGE)
    meta = store.meta(chunk.key)
    return Clouds(list(meta["sample_ids"]), list(meta["categories"]), store.array(chunk.key, "points"),
                  store.array(chunk.key, "labels"))


def plan_label_chunks(pool: CloudPool, checkpoint_sha256: str, rule: str, stats: ClassStats | None, k: float,
                      cycle: int, merged: Collection[str]) -> list[InputChunk]:
    """One labelling chunk per cloud chunk of the pool (same shards and ids), keyed by the cloud chunk, the
    classifier, the rule and its statistics, the cycle and the chunk's ids already merged (which it skips)."""
    params = json.dumps({"stage": LABEL_STAGE, "version": STAGE_VERSION, "checkpoint_sha256": checkpoint_sha256,
                         "rule": rule, "stats": None if stats is None else _stats_digest(stats), "k": k,
                         "cycle": cycle}, sort_keys=True)
    chunks = []
    for chunk in pool.chunks:
        digest = hashlib.sha256(f"{params}\0{chunk.key}\0".encode())
        for sample_id in chunk.sample_ids:
            if sample_id in merged:
                digest.update(sample_id.encode() + b"\0")
        chunks.append(dataclasses.replace(chunk, stage=LABEL_STAGE, key=digest.hexdigest()))
    return chunks


def _stats_digest(stats: ClassStats) -> str:
    digest = hashlib.sha256()
    for field in dataclasses.fields(stats):
        digest.update(np.asarray(getattr(stats, field.name), np.float64).tobytes())
    return digest.hexdigest()


def label_chunk(chunk: InputChunk, store_root: str, clouds_key: str, checkpoint: str, checkpoint_sha256: str,
                rule: str, stats: ClassStats | None, k: float, cycle: int, skip: Collection[str] = (),
                device: str = "auto") -> dict:
    """Pseudo-label one chunk's clouds (cloud chunk `clouds_key`), minus the `skip` ids (already merged), by the
    cycle's classifier; commit the rows under the label chunk's key and return its meta (counts only)."""
    start = time.perf_counter()
    model = cached("classifier", checkpoint, checkpoint_sha256, device, lambda: load_trained(checkpoint, device),
                   lambda m: m.checkpoint_sha256)
    clouds = load_chunk_clouds(store_root, dataclasses.replace(chunk, stage=STAGE, key=clouds_key))
    labels = label_pool_part(model, clouds, rule, stats, k, cycle, skip)
    return ChunkStore(store_root, LABEL_STAGE).commit(
        chunk.key, {"rows": (labels, PseudoLabel)},
        {"chunk": chunk.index, "table": chunk.table, "labelled": len(labels),
         "accepted": sum(label.accepted for label in labels), "seconds": time.perf_counter() - start})


def label_pool_part(model: TrainResult, clouds: Clouds, rule: str, stats: ClassStats | None, k: float, cycle: int,
                    skip: Collection[str] = ()) -> list[PseudoLabel]:
    skip = set(skip)
    clouds = clouds.subset(np.flatnonzero([i not in skip for i in clouds.sample_ids]))
    if not len(clouds):  # every sample of the chunk was merged in an earlier cycle
        return []
    # make_sample_id writes "<dataset>-<16 hex>", so the id names the sample's dataset.
    datasets = [sample_id.rsplit("-", 1)[0] for sample_id in clouds.sample_ids]
    return label_rows(clouds, datasets, predict_logits(model.model, clouds.points), rule, stats, k, cycle,
                      model.checkpoint_sha256)


def _concat(parts: list[Clouds]) -> Clouds:
    """The parts in order, copied once (not pairwise)."""
    kept = [p for p in parts if len(p)]
    if not kept:
        shape = parts[0].points.shape[1:] if parts else (0, 3)
        return Clouds([], [], np.zeros((0, *shape), np.float32), np.zeros(0, np.int64))
    return Clouds([i for p in kept for i in p.sample_ids], [c for p in kept for c in p.categories],
                  np.concatenate([p.points for p in kept]), np.concatenate([p.labels for p in kept]))
