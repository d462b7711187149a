"""Ingestion: a dataset's loader records -> complete `Sample` rows in a table, bad inputs -> the rejects table.

Loaders (one codec module per format, registered in tasks/ingest/formats.py) stream `RawSample`s in the
canonical frame. This module adds what they
leave out — object surface points with labels, and hand vertices from the MANO layer in batches — then the
table writer validates every row against `Sample`; anything that fails becomes a `Reject`. Nothing is
dropped: inputs = rows + rejects.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.mano import ManoLayer
from models.mano_pickle import ManoParams, load_mano_pickle, mano_file
from ops.surface_sampling import sample_surface
from schemas.data_root import DataRoot
from schemas.manifest import Lineage
from schemas.rows import Reject, Sample
from tasks.ingest.common import STAGE_VERSION, RawSample, Unchanged
from tasks.ingest.formats import get_format
from tasks.ingest.mano_frame import HandTemplate
from tasks.store.layout import check_target
from tasks.store.write import TableWriter, write_table

MANO_BATCH = 64


@dataclass(frozen=True)
class IngestCounts:
    """inputs = rows + rejects; seconds of wall time."""

    dataset: str
    inputs: int
    rows: int
    rejects: int
    seconds: float
    table: Path
    rejects_table: Path


def iter_raw(fmt: str, root: str | Path, template: HandTemplate, frame_step: int = 1,
             known: Mapping[str, str] | None = None) -> Iterable[RawSample | Reject | Unchanged]:
    """The registered loader of one format; ValueError naming the format and the registered ones when unknown.
    `known` ({sample_id: content_hash} of the table): a format with a `read_known` may yield Unchanged for those."""
    chosen = get_format(fmt)
    if known and chosen.read_known is not None:
        return chosen.read_known(Path(root), template, frame_step, known)
    return chosen.read(Path(root), template, frame_step)


def load_hand(mano_root: str | Path) -> tuple[ManoParams, ManoLayer]:
    """The right-hand MANO model from `mano_root` (the licensed MANO_RIGHT.pkl or the generated one)."""
    params = load_mano_pickle(mano_file(mano_root, "right"))
    return params, ManoLayer(params=params, use_pca=False, flat_hand_mean=True)


class HandVertices:
    """MANO vertices (metres) for batches of (pose, betas, trans), with per-subject templates (GRAB's vtemp).

    The layer runs in float64 and the vertices are rounded to float32 once: a float32 matmul's last bit depends on
    the batch it runs in and on how many threads share the work (ingest chunks run side by side), and a sample's
    row must not depend on which other samples were ingested with it, nor when."""

    def __init__(self, params: ManoParams, layer: ManoLayer) -> None:
        self.params, self.layer = params, copy.deepcopy(layer).double()
        self._by_template: dict[str, ManoLayer] = {}

    def _layer_for(self, template: np.ndarray | None) -> ManoLayer:
        if template is None:
            return self.layer
        key = hashlib.sha256(np.ascontiguousarray(template, dtype=np.float64).tobytes()).hexdigest()
        if key not in self._by_template:
            layer = ManoLayer(params=self.params, use_pca=False, flat_hand_mean=True)
            layer.th_v_template.copy_(torch.tensor(np.asarray(template, np.float32))[None])
            self._by_template[key] = layer.double()
        return self._by_template[key]

    @torch.no_grad()
    def __call__(self, raws: list[RawSample]) -> list[np.ndarray]:
        """(778, 3) float32 per raw sample; all must carry hand_pose, hand_betas, hand_trans."""
        out: list[np.ndarray | None] = [None] * len(raws)
        groups: dict[int, list[int]] = {}
        layers: dict[int, ManoLayer] = {}
        for i, raw in enumerate(raws):
            layer = self._layer_for(raw.hand_template)
            groups.setdefault(id(layer), []).append(i)
            layers[id(layer)] = layer
        for key, indices in groups.items():
            pose = torch.tensor(np.stack([raws[i].hand_pose for i in indices]), dtype=torch.float64)
            betas = torch.tensor(np.stack([raws[i].hand_betas for i in indices]), dtype=torch.float64)
            trans = torch.tensor(np.stack([raws[i].hand_trans for i in indices]), dtype=torch.float64)
            verts = layers[key](pose, betas, trans)[0].numpy() / 1000  # millimetres -> metres
            for j, i in enumerate(indices):
                out[i] = verts[j].astype(np.float32)
        return out


def _rng_for(sample_id: str, seed: int) -> np.random.Generator:
    """Per-sample generator: a sample's points do not depend on what else is ingested with it."""
    return np.random.default_rng([seed, int(hashlib.sha256(sample_id.encode()).hexdigest()[:15], 16)])


def complete(raws: list[RawSample], hands: HandVertices, num_points: int, seed: int) -> list[dict[str, Any] | Reject]:
    """Add object_points (+ labels) and hand_verts to a batch; a sample that cannot be completed is a Reject."""
    needs_hand = [r for r in raws if r.hand_verts is None and r.hand_pose is not None]
    verts = dict(zip((id(r) for r in needs_hand), hands(needs_hand) if needs_hand else [], strict=True))
    out: list[dict[str, Any] | Reject] = []
    for raw in raws:
        row = raw.row()
        try:
            surface = sample_surface(raw.object_vertices, raw.object_faces, num_points, _rng_for(raw.sample_id, seed),
                                     vertex_labels=raw.object_vertex_labels)
        except (ValueError, TypeError) as exc:
            out.append(Reject(sample_id=raw.sample_id, stage_version=STAGE_VERSION, stage="ingest",
                              source=raw.source_path, reason=f"object mesh: {exc}", field="object_vertices",
                              dataset=raw.dataset))
            continue
        row["object_points"] = surface.points
        if surface.labels is not None:
            row["object_point_labels"] = surface.labels
        if id(raw) in verts:
            row["hand_verts"] = verts[id(raw)]
        out.append(row)
    return out


def check_apart(root: Path, table: Path) -> None:
    """Refuse an output table inside the dataset it reads (or a dataset inside the output): publishing would
    move or delete the inputs."""
    root_r, table_r = Path(root).resolve(), Path(table).resolve()
    for out in (table_r, DataRoot.beside(table_r, "rejects")):
        if out == root_r or out.is_relative_to(root_r) or root_r.is_relative_to(out):
            raise ValueError(f"output {out} overlaps the dataset root {root_r}: write the table outside the dataset")


def ingest(fmt: str, root: str | Path, table: str | Path, mano_root: str | Path, *, num_points: int = 2048,
           seed: int = 0, frame_step: int = 1, rows_per_shard: int = 512,
           progress: Callable[[int], None] | None = None) -> IngestCounts:
    """Stream one dataset into `table` (upsert by sample_id) and its rejects into `<table dir>/rejects`."""
    start = time.perf_counter()
    table = Path(table)
    rejects_table = DataRoot.beside(table, "rejects")
    check_apart(Path(root), table)
    check_target(table)
    check_target(rejects_table)
    params, layer = load_hand(mano_root)
    hands = HandVertices(params, layer)
    lineage = Lineage(stage="ingest", stage_version=STAGE_VERSION,
                      params={"format": fmt, "root": str(root), "num_points": num_points, "seed": seed,
                              "frame_step": frame_step}, seed=seed)
    rejects: list[Reject] = []
    inputs = 0
    with TableWriter(table, Sample, lineage=lineage, on_invalid="collect", rows_per_shard=rows_per_shard) as writer:
        for batch in _batches(iter_raw(fmt, root, HandTemplate.from_mano(params), frame_step), MANO_BATCH):
            inputs += len(batch)
            raws = [r for r in batch if isinstance(r, RawSample)]
            rejects += [r for r in batch if isinstance(r, Reject)]
            completed = complete(raws, hands, num_points, seed)
            rejects += [r for r in completed if isinstance(r, Reject)]
            writer.write(r for r in completed if not isinstance(r, Reject))
            if progress:
                progress(len(batch))
        if inputs == 0:  # inside the writer: raising here publishes nothing
            layout = get_format(fmt).layout
            raise ValueError(f"{root}: no {fmt} input found" + (f" (expected {layout})" if layout else "") +
                             "; is it the right folder and --format?")
    rejects += writer.rejects
    write_table(rejects_table, rejects, Reject, lineage=lineage, rows_per_shard=rows_per_shard)
    counts = IngestCounts(dataset=fmt, inputs=inputs, rows=writer.manifest.num_rows, rejects=len(rejects),
                          seconds=time.perf_counter() - start, table=table, rejects_table=rejects_table)
    return counts


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_counts(counts: list[IngestCounts]) -> None:
    """The contract of every stage: inputs = rows + rejects."""
    for c in counts:
        if c.inputs != c.rows + c.rejects:
            raise RuntimeError(f"{c.dataset}: {c.inputs} inputs but {c.rows} rows + {c.rejects} rejects")
