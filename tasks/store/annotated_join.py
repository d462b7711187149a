"""The final join: samples + labels + instructions + affordance maps -> `annotated` rows, keyed by sample_id.

A sample joins when it has an affordance (its own or self-training's), an instruction and a map. AffordPose's
map is its part labels (the ground truth: points whose part carries the affordance); the others' is the
affordance-map model's prediction. A labelled sample that lacks an instruction or a map is a reject with the
reason; a sample with no label at all is counted, not rejected (it has nothing to annotate yet).

A sample whose hand is not MANO's (AffordPose's GraspIt! ManoHand) joins with its mesh; when `afford fit-mano`
has fitted it with a mean error of at most USABLE_FIT_MEAN_MM, the fitted MANO parameters join too (with the
error in mano_fit_error_mm), so the MANO-parameter generator can train on it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from schemas.affordance import AFFORDPOSE_LABEL_IDS
from schemas.affordance_map import AffordanceMapRow
from schemas.annotated import AnnotatedRow
from schemas.instruction import InstructionRow
from schemas.mano_fit import USABLE_FIT_MEAN_MM, ManoFitRow
from schemas.rows import AffordanceLabel, Reject, Sample
from tasks.runtime.threads import worker_threads
from tasks.store.chunks import ChunkStore, InputChunk, plan_chunks, rows_digest
from tasks.store.read import open_table
from tasks.store.side_rows import KeyedShards, side_rows

STAGE_VERSION = "annotate-v1"
LABEL_IDS = {name: label for label, name in AFFORDPOSE_LABEL_IDS.items()}


@dataclass
class JoinCounts:
    samples: int = 0
    joined: int = 0
    unlabelled: int = 0
    rejected: int = 0
    fitted: int = 0  # rows of non-MANO hands that carry a usable MANO fit
    by_dataset: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        per = ", ".join(f"{d} {n}" for d, n in sorted(self.by_dataset.items()))
        fitted = f"; {self.fitted} non-MANO hands with a fitted MANO hand" if self.fitted else ""
        return (f"{self.samples} samples -> {self.joined} annotated rows ({per}) + {self.rejected} rejected + "
                f"{self.unlabelled} without a label{fitted}")


def join_rows(samples: Iterable[Sample], labels: dict[str, AffordanceLabel], instructions: dict[str, InstructionRow],
              maps: dict[str, AffordanceMapRow], rejects: list[Reject], fits: dict[str, ManoFitRow] | None = None,
              max_fit_error_mm: float = USABLE_FIT_MEAN_MM) -> tuple[list[AnnotatedRow], JoinCounts]:
    """Annotated rows of the labelled samples; rejects get the reason. fits: sample_id -> MANO fit (fit-mano)."""
    counts, rows = JoinCounts(), []
    fits = fits or {}
    for sample in samples:
        counts.samples += 1
        label = labels.get(sample.sample_id)
        affordance = sample.affordance or (label.affordance if label else None)
        if affordance is None:
            counts.unlabelled += 1
            continue
        fit = fits.get(sample.sample_id)
        usable = fit if fit is not None and fit.mean_error_mm <= max_fit_error_mm else None
        problem, row = _joined(sample, affordance, label, instructions.get(sample.sample_id),
                               maps.get(sample.sample_id), usable)
        if problem:
            counts.rejected += 1
            rejects.append(Reject(sample_id=sample.sample_id, stage_version=STAGE_VERSION, stage="annotate",
                                  source=sample.source_path, reason=problem[1], field=problem[0],
                                  dataset=sample.dataset))
            continue
        rows.append(row)
        counts.joined += 1
        counts.fitted += row.mano_fit_error_mm is not None
        counts.by_dataset[sample.dataset] = counts.by_dataset.get(sample.dataset, 0) + 1
    return rows, counts


def _joined(sample: Sample, affordance: str, label: AffordanceLabel | None, instruction: InstructionRow | None,
            predicted: AffordanceMapRow | None, fit: ManoFitRow | None = None
            ) -> tuple[tuple[str, str] | None, AnnotatedRow | None]:
    if instruction is None:
        return ("instruction", "no instruction for this labelled sample (run the instruct stage)"), None
    if sample.hand_pose is None and sample.hand_verts is None:
        return ("hand_pose", "no hand: neither MANO parameters nor hand vertices"), None
    if sample.affordance is not None and sample.object_point_labels is not None:
        affordance_map = (np.asarray(sample.object_point_labels) == LABEL_IDS[affordance]).astype(np.float32)
        source, map_checkpoint = "part_labels", None
    elif predicted is not None:
        affordance_map, source, map_checkpoint = predicted.probabilities, "model", predicted.checkpoint_sha256
    else:
        return ("affordance_map", "no affordance map for this labelled sample (run the affordance stage)"), None
    if len(affordance_map) != len(sample.object_points):
        return ("affordance_map", f"map has {len(affordance_map)} values for {len(sample.object_points)} object "
                                  "points (the sample changed after its map was made)"), None
    return None, AnnotatedRow(
        sample_id=sample.sample_id, stage_version=STAGE_VERSION, dataset=sample.dataset, split=sample.split,
        content_hash=sample.content_hash, object_id=sample.object_id, object_class=instruction.object_class,
        affordance=affordance, label_source="ground_truth" if sample.affordance else label.origin,
        instruction=instruction.instruction, instruction_generator=instruction.generator,
        prompt_version=instruction.prompt_version, object_points=sample.object_points,
        affordance_map=affordance_map, map_source=source, **_mano(sample, fit), hand_verts=sample.hand_verts,
        hand_faces=sample.hand_faces, hand_model=sample.hand_model, hand_dofs=sample.hand_dofs,
        classifier_checkpoint_sha256=label.checkpoint_sha256 if label and not sample.affordance else None,
        map_checkpoint_sha256=map_checkpoint)


def _mano(sample: Sample, fit: ManoFitRow | None) -> dict:
    """The MANO fields of the row: the sample's own, or a usable fit of a non-MANO hand."""
    if sample.hand_model != "mano" and fit is not None:
        return {"hand_pose": fit.hand_pose, "hand_betas": fit.hand_betas, "hand_trans": fit.hand_trans,
                "mano_fit_error_mm": fit.mean_error_mm}
    return {"hand_pose": sample.hand_pose, "hand_betas": sample.hand_betas, "hand_trans": sample.hand_trans}


SIDE_TABLES = {"labels": AffordanceLabel, "instructions": InstructionRow, "maps": AffordanceMapRow,
               "fits": ManoFitRow}


@dataclass(frozen=True)
class SideTables:
    """Where the join's keyed side tables are; a table that does not exist (its stage did not run) is empty."""

    labels: Path | None
    instructions: Path | None
    maps: Path | None
    fits: Path | None = None

    def paths(self) -> dict[str, Path | None]:
        return {name: getattr(self, name) for name in SIDE_TABLES}


def side_inputs(tables: SideTables, ids: Sequence[str], shards: dict[str, Sequence[str]] | None = None
                ) -> dict[str, dict]:
    """{side name: {sample_id: row}} for `ids` only, reading only `shards[name]` of each side table when given
    (the shards a `KeyedShards` says hold the ids): memory follows the ids, not the tables."""
    shards = shards or {}
    return {name: side_rows(path, SIDE_TABLES[name], ids, shards.get(name)) for name, path in tables.paths().items()}


def join_ids(samples: Sequence[Sample], tables: SideTables, rejects: list[Reject],
             shards: dict[str, Sequence[str]] | None = None) -> tuple[list[AnnotatedRow], JoinCounts]:
    """`join_rows` for some samples, with the side rows of their ids read from `tables`."""
    side = side_inputs(tables, [s.sample_id for s in samples], shards)
    return join_rows(samples, side["labels"], side["instructions"], side["maps"], rejects, side["fits"])


# -- the chunked join (one task per chunk of sample shards) ---------------------------------------------------
JOIN_STAGE = "annotated_join"


def plan_join_chunks(sample_tables: Sequence[Path], tables: SideTables, shards_per_chunk: int
                     ) -> tuple[list[InputChunk], dict[str, KeyedShards]]:
    """Chunks of the samples tables, keyed by their shards and the side shards that hold their ids; and the
    side tables' shard index (what each chunk task reads)."""
    keyed = {name: KeyedShards(path) for name, path in tables.paths().items()}
    chunks = plan_chunks(JOIN_STAGE, sample_tables, shards_per_chunk,
                         {"stage_version": STAGE_VERSION, "max_fit_error_mm": USABLE_FIT_MEAN_MM},
                         side_key=lambda ids: rows_digest(k.digest(ids) for k in keyed.values()))
    return chunks, keyed


def side_shards(chunk: InputChunk, keyed: dict[str, KeyedShards]) -> dict[str, tuple[str, ...]]:
    return {name: k.shards_for(chunk.sample_ids) for name, k in keyed.items()}


def join_chunk(chunk: InputChunk, store_root: str, tables: SideTables,
               shards: dict[str, Sequence[str]] | None = None) -> dict:
    """Join one chunk of samples with their side rows; commit rows and rejects; return the counts as meta."""
    worker_threads()
    start = time.perf_counter()
    samples = list(open_table(chunk.table, Sample).iter_rows(shards=chunk.shards))
    rejects: list[Reject] = []
    rows, counts = join_ids(samples, tables, rejects, shards)
    return ChunkStore(store_root, JOIN_STAGE).commit(
        chunk.key, {"rows": (rows, AnnotatedRow), "rejects": (rejects, Reject)},
        {"chunk": chunk.index, "table": chunk.table, "counts": asdict(counts), "seconds": time.perf_counter() - start})


def total_counts(metas: Sequence[dict]) -> JoinCounts:
    """The chunks' counts summed."""
    total = JoinCounts()
    for meta in metas:
        counts = meta["counts"]
        for name in ("samples", "joined", "unlabelled", "rejected", "fitted"):
            setattr(total, name, getattr(total, name) + counts[name])
        for dataset, n in counts["by_dataset"].items():
            total.by_dataset[dataset] = total.by_dataset.get(dataset, 0) + n
    return total
