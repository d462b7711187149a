"""Incremental re-annotation: recompute only the samples whose source content changed, drop the removed ones.

A sample is *changed* when its sample_id is new or its content_hash (sha256 of the bytes it came from, meshes
included) differs from the row in the samples table; *removed* when its id is no longer produced by the
dataset's files (file deleted, or the sample became a reject). Every later stage then touches only those ids:

    ingest     complete + upsert the changed samples, delete the removed       (unchanged rows: not recomputed)
    labels     target datasets: the last self-training classifier and its 3-sigma rule label the changed
               samples; accepted -> origin `unreviewed` (no person has seen it yet), else `low_confidence`
    instruct   the changed labelled samples; unchanged (class, affordance) keys come from the cache (no call)
    maps       the affordance-map checkpoint of the last full run predicts the changed target samples
    annotated  the changed rows are re-joined and upserted; the removed rows deleted

Models are not retrained here: that is what a full `annotate` run does (a change to the labelled set needs one).
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from schemas.manifest import Lineage
from schemas.rows import AffordanceLabel, Reject, Row, Sample
from tasks.pseudo_label.confidence_filter import ClassStats
from tasks.store.read import open_table, table_exists
from tasks.store.write import TableWriter

STAGE_VERSION = "reannotate-v1"


@dataclass
class SampleDelta:
    """What one dataset's files changed, in sample ids. inputs = unchanged + changed + rejects (this scan)."""

    dataset: str
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    rejects: int = 0
    seconds: float = 0.0

    @property
    def inputs(self) -> int:
        return self.unchanged + len(self.changed) + self.rejects

    def summary(self) -> str:
        return (f"{self.dataset}: {self.inputs} inputs = {self.unchanged} unchanged + {len(self.changed)} changed "
                f"or new + {self.rejects} rejects; {len(self.removed)} removed")


def stored_hashes(table: Path) -> dict[str, str]:
    """{sample_id: content_hash} of a samples table; empty when the table does not exist yet."""
    if not table_exists(table):
        return {}
    data = open_table(table, Sample).read(["sample_id", "content_hash"]).to_pydict()
    return dict(zip(data["sample_id"], data["content_hash"], strict=True))


def ingest_delta(fmt: str, root: Path, table: Path, mano_root: Path, *, num_points: int = 2048, seed: int = 0,
                 frame_step: int = 1, chunk_scale: int = 1, files_per_chunk: int | None = None) -> SampleDelta:
    """Scan one dataset; complete and upsert only new or changed samples, delete samples that are gone.
    Completing a sample (surface points, MANO vertices) is the costly part of ingestion and is skipped for every
    sample whose content_hash matches the table, unless the table was ingested with another num_points, seed or
    frame_step (then every sample is recomputed). Rejects of this scan replace this dataset's earlier ingest rejects.
    The scan runs chunk by chunk in this process (tasks/ingest/ingest_chunks.py; annotate runs the chunks as
    tasks), and publishes one version.
    """
    from tasks.ingest.ingest_chunks import ingest_chunk, plan_ingest, publish_ingest  # it builds on this module

    start = time.perf_counter()
    plan = plan_ingest(fmt, root, table, mano_root, num_points=num_points, seed=seed, frame_step=frame_step,
                       chunk_scale=chunk_scale, files_per_chunk=files_per_chunk)
    metas = [ingest_chunk(plan, chunk) for chunk in plan.chunks]
    return publish_ingest(plan, metas, seconds=time.perf_counter() - start)


def _replace_rejects(path: Path, stage: str, dataset: str, rejects: Sequence[Reject], lineage: Lineage) -> None:
    """This stage's rejects for `dataset` become exactly `rejects` (a fixed file's old reject goes away)."""
    replace_rejects(path, stage, rejects, lineage, lambda sample_id, ds: ds == dataset)


def replace_rejects(path: Path, stage: str, rejects: Sequence[Reject], lineage: Lineage,
                    scope: Callable[[str, str | None], bool]) -> None:
    """Upsert `rejects`; delete this stage's earlier rejects whose (sample_id, dataset) is in `scope` and which
    were not rejected again."""
    with table_lock(path):
        _replace_locked(path, stage, rejects, lineage, scope)


def _replace_locked(path: Path, stage: str, rejects: Sequence[Reject], lineage: Lineage,
                    scope: Callable[[str, str | None], bool]) -> None:
    old = []
    if table_exists(path):
        data = open_table(path, Reject).read(["stage", "sample_id", "dataset"]).to_pydict()
        old = [(st, sid) for st, sid, ds in zip(data["stage"], data["sample_id"], data["dataset"], strict=True)
               if st == stage and scope(sid, ds)]
    again = {(r.stage, r.sample_id) for r in rejects}
    if not rejects and not old and table_exists(path):  # nothing to do (a first run still creates the table)
        return
    with TableWriter(path, Reject, lineage=lineage) as writer:
        writer.write(rejects)
        writer.delete([key for key in old if key not in again])


@contextmanager
def table_lock(path: Path) -> Iterator[None]:
    """An exclusive lock beside a table shared by concurrent writers (the ingest tasks of several datasets all
    write `rejects`): an upsert reads the current version and publishes the next, so two at once would lose one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.update.lock"), "w") as handle:  # not the writer's own lock file
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upsert(path: Path, rows: Iterable[Row], model: type[Row], removed: Iterable[str], lineage: Lineage) -> int:
    """Upsert rows and delete `removed` keys (ids absent from the table are ignored); returns rows written."""
    rows = list(rows)
    existing = set(open_table(path, model).keys()) if table_exists(path) else set()
    removed = [key for key in removed if key in existing and key not in {r.sample_id for r in rows}]
    if not rows and not removed:  # nothing to change: no new version
        return 0
    with TableWriter(path, model, lineage=lineage) as writer:
        writer.write(rows)
        writer.delete(removed)
    return len(rows)


# -- the classifier state a changed target sample is labelled with --------------------------------------------
@dataclass(frozen=True)
class ClassifierState:
    """The last self-training cycle's classifier and its measured rule: enough to label a new sample the same way."""

    checkpoint: str
    checkpoint_sha256: str
    rule: str
    k: float
    cycle: int
    stats: dict | None  # ClassStats fields as lists (class_conditional), None for rules that need none

    def class_stats(self) -> ClassStats | None:
        if self.stats is None:
            return None
        s = self.stats
        return ClassStats(mean=np.asarray(s["mean"], np.float64), std=np.asarray(s["std"], np.float64),
                          count=np.asarray(s["count"], np.int64), fallback=np.asarray(s["fallback"], bool),
                          pooled_mean=float(s["pooled_mean"]), pooled_std=float(s["pooled_std"]), k=float(s["k"]))


def save_classifier_state(path: Path, checkpoint: Path, checkpoint_sha256: str, rule: str, k: float, cycle: int,
                          stats: ClassStats | None) -> Path:
    plain = None if stats is None else {name: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
                                        for name, v in asdict(stats).items()}
    state = ClassifierState(str(Path(checkpoint).absolute()), checkpoint_sha256, rule, k, cycle, plain)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(state), indent=1) + "\n")
    return path


def load_classifier_state(path: Path) -> ClassifierState:
    """ValueError naming the file when it is missing or not a state written by self_training."""
    try:
        return ClassifierState(**json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise ValueError(f"{path}: no classifier state; run the full annotate flow once before re-annotating "
                         "(it trains the classifier that labels changed samples)") from None
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a classifier state written by self_training ({exc})") from exc


def unreviewed_labels(labels: Sequence, state: ClassifierState) -> list[AffordanceLabel]:
    """PseudoLabels of changed samples -> final labels: accepted by the rule -> `unreviewed`, else `low_confidence`."""
    return [AffordanceLabel(sample_id=p.sample_id, stage_version=STAGE_VERSION, dataset=p.dataset,
                            affordance=p.predicted, origin="unreviewed" if p.accepted else "low_confidence",
                            cycle=state.cycle, confidence=p.confidence, checkpoint_sha256=p.checkpoint_sha256)
            for p in labels]
