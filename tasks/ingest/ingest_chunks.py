"""Ingest in chunks of source files: one task per chunk, each committed on its own, the table published once.

    plan = plan_ingest("oakink", root, table, num_points=2048, seed=0)      # lists the source files, cuts chunks
    metas = [ingest_chunk(plan, chunk) for chunk in plan.chunks]          # or one task each (annotate's ingest)
    delta = publish_ingest(plan, metas)                                   # one new table version

A chunk reads its files with the format's `read_paths`, completes the samples that are new or whose content hash
differs from the table (surface points, MANO vertices: the costly part), validates them, and commits rows and
rejects under `chunks/ingest/<key>`. Publishing adopts the chunks' row files into one new version (upsert), deletes
the samples no chunk produced any more, and replaces the dataset's ingest rejects. A run killed mid-stage leaves
the table as it was; its re-run keeps the committed chunks, because a chunk's key covers the format and its
parameters, the table's content hashes, the chunk's files, and the size and mtime of every file under the dataset
root (a changed mesh re-keys every chunk). Once published, the stage's chunks are dropped: the table is the record.

A format without a source list (`DatasetFormat.sources`, e.g. a plug-in that registered only `read`) is one chunk.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from schemas.data_root import DataRoot
from schemas.manifest import Lineage
from schemas.rows import Reject, Sample
from schemas.settings import AffordSettings
from tasks.ingest.common import STAGE_VERSION as INGEST_VERSION
from tasks.ingest.common import RawSample, Unchanged
from tasks.ingest.delta import SampleDelta, replace_rejects, stored_hashes
from tasks.ingest.formats import get_format
from tasks.ingest.mano_frame import HandTemplate
from tasks.ingest.pipeline import MANO_BATCH, HandVertices, _batches, complete, iter_raw, load_hand
from tasks.runtime.chunked import read_outputs
from tasks.store import layout
from tasks.store.chunks import ChunkStore, rows_digest
from tasks.store.read import open_table, table_exists
from tasks.store.write import TableWriter, validate_row

STAGE = "ingest"
CHUNK_VERSION = "ingest-chunk-1"  # raise when what a chunk computes from the same files changes


@dataclass(frozen=True)
class SourceChunk:
    """Some consecutive source files of one dataset (relative to its root); `paths` None: the whole dataset."""

    stage: str
    index: int  # 0-based, over every chunk of the plan
    total: int
    table: str  # the dataset root: what progress lines and errors name
    key: str
    paths: tuple[str, ...] | None
    shards: tuple = field(default=(), repr=False)  # no input shards: the inputs are files

    @property
    def rows(self) -> int:
        """Source files in the chunk (OakInk, AffordPose, HO-3D: one sample each; GRAB: one sequence)."""
        return len(self.paths) if self.paths is not None else 1

    @property
    def first_source(self) -> str:
        return str(Path(self.table) / self.paths[0]) if self.paths else self.table

    def describe(self) -> str:
        files = f"{self.paths[0]} .. {self.paths[-1]}" if self.paths else "every file"
        return f"{self.stage} chunk {self.index + 1}/{self.total} of {self.table} ({files})"


@dataclass(frozen=True)
class IngestPlan:
    """One dataset's ingest, cut into chunks. `stale`: the table was ingested with other sampling parameters,
    so every sample is recomputed."""

    fmt: str
    root: str
    table: str
    mano_root: str
    store_root: str
    num_points: int
    seed: int
    frame_step: int
    stale: bool
    chunks: tuple[SourceChunk, ...]

    @property
    def lineage(self) -> Lineage:
        return Lineage(stage="ingest", stage_version=INGEST_VERSION,
                       params={"format": self.fmt, "root": self.root, "num_points": self.num_points,
                               "seed": self.seed, "frame_step": self.frame_step, "incremental": True},
                       seed=self.seed)


def chunk_store_root(table: str | Path) -> Path:
    """Where a table's ingest chunks are committed: its data root's chunks/ (a table at <root>/tables/<name>),
    else a hidden folder beside the table."""
    table = Path(table)
    if table.absolute().parent.name == "tables":
        return DataRoot.of_table(table).chunks
    return table.absolute().parent / f".{table.name}.chunks"


def plan_ingest(fmt: str, root: str | Path, table: str | Path, mano_root: str | Path, *, num_points: int = 2048,
                seed: int = 0, frame_step: int = 1, chunk_scale: int = 1,
                files_per_chunk: int | None = None) -> IngestPlan:
    """List the dataset's source files and cut them into chunks of the format's `sources_per_chunk` files (by
    default a shard's worth, AFFORD_ROWS_PER_SHARD) times `chunk_scale` (AFFORD_CHUNK_SHARDS in the flows), or of
    `files_per_chunk` when given."""
    if chunk_scale < 1:
        raise ValueError(f"chunk_scale must be >= 1, got {chunk_scale}")
    if files_per_chunk is not None and files_per_chunk < 1:
        raise ValueError(f"files_per_chunk must be >= 1, got {files_per_chunk}")
    chosen, root, table = get_format(fmt), Path(root), Path(table)
    before = stored_hashes(table)
    stale = bool(before) and _ingest_params(table) != (num_points, seed, frame_step)
    base = json.dumps({"version": CHUNK_VERSION, "ingest": INGEST_VERSION, "format": fmt, "num_points": num_points,
                       "seed": seed, "frame_step": frame_step, "stale": stale,
                       "table": rows_digest(sorted(before.items())), "files": _files_digest(root)}, sort_keys=True)
    if chosen.sources is None or chosen.read_paths is None or not root.is_dir():
        groups: list[tuple[str, ...] | None] = [None]
    else:
        listed = [path.relative_to(root).as_posix() for path in chosen.sources(root, frame_step)]
        size = files_per_chunk or (chosen.sources_per_chunk or AffordSettings().rows_per_shard) * chunk_scale
        groups = [tuple(listed[i:i + size]) for i in range(0, len(listed), size)] or [()]
    chunks = tuple(SourceChunk(stage=STAGE, index=i, total=len(groups), table=str(root), paths=group,
                               key=hashlib.sha256(f"{base}\0{json.dumps(group)}".encode()).hexdigest())
                   for i, group in enumerate(groups))
    return IngestPlan(fmt=fmt, root=str(root), table=str(table), mano_root=str(mano_root),
                      store_root=str(chunk_store_root(table)), num_points=num_points, seed=seed,
                      frame_step=frame_step, stale=stale, chunks=chunks)


def _ingest_params(table: Path) -> tuple[int, int, int]:
    params = open_table(table).manifest.lineage.params
    return int(params.get("num_points", -1)), int(params.get("seed", -1)), int(params.get("frame_step", 1))


def _files_digest(root: Path) -> str:
    """sha256 of (relative path, size, mtime_ns) of every file under `root`: any edit, addition or removal under
    the dataset (a grasp, a mesh, a meta file) changes it."""
    digest = hashlib.sha256()
    if not root.is_dir():
        return digest.hexdigest()
    for current, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(current, name)
            try:
                stat = os.stat(path)
            except OSError:  # vanished while listing: the chunks read what is there
                continue
            digest.update(f"{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


@lru_cache(maxsize=4)
def _known(table: str, version: str, stale: bool) -> dict[str, str]:
    """{sample_id: content_hash} the table holds (empty when stale): read once per table version per process, not
    once per chunk."""
    return {} if stale else stored_hashes(Path(table))


def _version_id(table: Path) -> str:
    """The table's current version: the folder its path links to, and its manifest's size and mtime (a table
    deleted and written again reuses version numbers)."""
    if not table_exists(table):
        return ""
    manifest = table.resolve() / layout.MANIFEST_NAME
    stat = manifest.stat()
    return f"{manifest}:{stat.st_size}:{stat.st_mtime_ns}"


@lru_cache(maxsize=4)
def _hand(mano_root: str) -> HandVertices:
    return HandVertices(*load_hand(mano_root))


def ingest_chunk(plan: IngestPlan, chunk: SourceChunk) -> dict:
    """Read, complete and validate one chunk's samples; commit rows and rejects; return its meta (ids seen,
    ids written, unchanged count)."""
    start = time.perf_counter()
    hands = _hand(plan.mano_root)  # one MANO layer per process, shared by its chunk tasks
    known = _known(plan.table, _version_id(Path(plan.table)), plan.stale)
    template = HandTemplate.from_mano(hands.params)
    root = Path(plan.root)
    if chunk.paths is None:
        items = iter_raw(plan.fmt, root, template, plan.frame_step, known)
    else:
        items = get_format(plan.fmt).read_paths(root, template, plan.frame_step, [root / p for p in chunk.paths],
                                                known)
    rejects: list[Reject] = []
    seen: list[str] = []
    written: list[str] = []
    pending: list[Sample] = []
    row_files: list[str] = []
    unchanged = 0
    size = AffordSettings().rows_per_shard
    with ChunkStore(plan.store_root, STAGE).writing(chunk.key) as out:

        def flush() -> None:
            # Shard-sized row files, written as they fill (memory: one shard): the table gets the shards a
            # single writer would cut within the chunk, and so do the chunked stages that read it shard by shard
            row_files.append(f"rows-{len(row_files)}")
            out.output(row_files[-1], pending, Sample)
            pending.clear()

        for batch in _batches(items, MANO_BATCH):
            rejects += [r for r in batch if isinstance(r, Reject)]
            same = [r.sample_id for r in batch if isinstance(r, Unchanged)]
            raws = [r for r in batch if isinstance(r, RawSample)]
            seen += same + [r.sample_id for r in raws]
            todo = [r for r in raws if known.get(r.sample_id) != r.content_hash]
            unchanged += len(same) + len(raws) - len(todo)
            for item in complete(todo, hands, plan.num_points, plan.seed):
                if isinstance(item, Reject):
                    rejects.append(item)
                    continue
                # the index names the row in its reject; chunk-major, so ids of unusable rows stay distinct
                valid = validate_row(Sample, item, chunk.index * 1_000_000 + len(written) + len(rejects),
                                     Path(plan.table), plan.lineage)
                if isinstance(valid, Reject):
                    rejects.append(valid)
                    continue
                pending.append(valid)
                written.append(valid.sample_id)
                if len(pending) >= size:
                    flush()
        if pending:
            flush()
        out.output("rejects", rejects, Reject)
        return out.commit({"chunk": chunk.index, "dataset": plan.fmt, "seen": seen, "written": written,
                           "row_files": row_files, "unchanged": unchanged, "rejected": len(rejects),
                           "seconds": time.perf_counter() - start})


def publish_ingest(plan: IngestPlan, metas: Sequence[dict], seconds: float = 0.0) -> SampleDelta:
    """One new version of the samples table from the committed chunks (none when nothing changed, except that
    the first run creates the table), this scan's rejects in place of the dataset's earlier ingest rejects; then
    drop the chunks. `metas`: ingest_chunk's, in chunk order."""
    start = time.perf_counter()
    store, table = ChunkStore(plan.store_root, STAGE), Path(plan.table)
    before = set(stored_hashes(table))
    outputs = read_outputs(list(plan.chunks), store, "rejects")
    rejects = [Reject.model_validate(r) for r in outputs.to_pylist()] if outputs is not None else []
    rejected = {r.sample_id for r in rejects}
    seen = {i for meta in metas for i in meta["seen"]}
    written = {i for meta in metas for i in meta["written"]}
    delta = SampleDelta(dataset=plan.fmt, unchanged=sum(m["unchanged"] for m in metas), rejects=len(rejects))
    delta.removed = sorted(before - (seen - rejected))
    if written or delta.removed or not table_exists(table):  # otherwise nothing changed: no new version
        with TableWriter(table, Sample, lineage=plan.lineage) as writer:
            for chunk in plan.chunks:
                meta = store.meta(chunk.key)
                for name in meta["row_files"]:
                    writer.adopt_shard(store.output(chunk.key, name), meta["outputs"][name]["sha256"])
            writer.delete(delta.removed)
    delta.changed = sorted(written - rejected)
    replace_rejects(DataRoot.beside(table, "rejects"), "ingest", rejects, plan.lineage,
                    lambda sample_id, dataset: dataset == plan.fmt)
    store.discard(chunk.key for chunk in plan.chunks)
    delta.seconds = seconds + time.perf_counter() - start
    return delta
