"""The evaluation's inputs: objects to grasp (annotated table joined with the samples tables' meshes) and the
grasps a trained generator makes for them, as tasks.grasp.evaluation.evaluate.GeneratedGrasp.

Annotated rows carry object points, the affordance map, the instruction and the requested affordance but no
mesh; the mesh is in the dataset's samples table (`<samples_root>/<dataset>`, schemas.rows.Sample), joined by
sample_id. One row per distinct object is considered (the first by sample_id), rows of the test split when the
table has any, else every row; objects without a mesh are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.hand_autoencoder import split_mano
from models.mano import ManoLayer
from schemas.annotated import AnnotatedRow
from schemas.rows import Sample
from tasks.grasp.data import Embedder, hand_vertices, resample
from tasks.grasp.evaluation.evaluate import GeneratedGrasp
from tasks.grasp.sample import GraspGenerator, sample_grasps
from tasks.store.read import open_table


@dataclass(frozen=True)
class EvalObject:
    """One object to grasp: object_points (N, 3) metres, affordance_map (N,), mesh (V, 3) metres + (F, 3)."""

    sample_id: str
    dataset: str
    object_id: str
    instruction: str
    affordance: str
    object_points: np.ndarray
    affordance_map: np.ndarray
    object_vertices: np.ndarray
    object_faces: np.ndarray
    object_class: str = ""  # what the retrieval baseline matches training grasps by


@dataclass
class EvalObjects:
    objects: list[EvalObject]
    split: str  # "test", or "all" when the table has no test rows
    candidates: dict[str, int] = field(default_factory=dict)  # distinct objects considered, per dataset
    without_mesh: dict[str, int] = field(default_factory=dict)  # of those, skipped for want of a mesh

    def summary(self) -> str:
        parts = [f"{d}: {sum(o.dataset == d for o in self.objects)} objects evaluated of {n} "
                 f"({self.without_mesh.get(d, 0)} without a mesh, skipped)" for d, n in self.candidates.items()]
        return f"split {self.split}; " + "; ".join(parts)


class EmptySplit(ValueError):
    """A split the generator's evaluation needs holds no object (with MANO grasps, for a training set)."""


SPLITS = ("auto", "test", "val", "all")  # auto: the test split when the table has test rows, else every row


def _candidates(rows: Iterable[AnnotatedRow], split: str = "auto", by_affordance: bool = False,
                table: str | Path = "") -> tuple[dict[str, list[AnnotatedRow]], str]:
    """dataset -> one row per distinct object (the first by sample_id; per object and affordance with
    `by_affordance`), of `split` (SPLITS). EmptySplit naming the table when split test or val has no row.
    Settings are compared on `val` objects, and the report is made on `test` objects, never tuned on."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    rows = sorted(rows, key=lambda r: r.sample_id)
    present = {r.split for r in rows}
    if split in ("test", "val") and split not in present:
        raise EmptySplit(f"annotated table {table}: split {split!r} has no rows, so there is no held-out object to "
                         f"evaluate on (splits present: {sorted(present) or 'none'})")
    if split == "auto":
        split = "test" if "test" in present else "all"
    firsts: dict[tuple[str, ...], AnnotatedRow] = {}
    for row in rows:
        if split == "all" or row.split == split:
            key = (row.dataset, row.object_id, row.affordance) if by_affordance else (row.dataset, row.object_id)
            firsts.setdefault(key, row)
    by_dataset: dict[str, list[AnnotatedRow]] = {}
    for key, row in firsts.items():
        by_dataset.setdefault(key[0], []).append(row)
    return by_dataset, split


def _meshes(table: Path, ids: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """sample_id -> (vertices, faces) for the wanted ids that have a non-empty mesh; {} without a table."""
    if not (table / "manifest.json").is_file():
        return {}
    out = {}
    for sample in open_table(table, Sample).iter_rows():
        if (sample.sample_id in ids and sample.object_vertices is not None and sample.object_faces is not None
                and len(sample.object_faces)):
            out[sample.sample_id] = (np.asarray(sample.object_vertices, np.float64),
                                     np.asarray(sample.object_faces, np.int64))
    return out


def select_objects(annotated_table: str | Path, samples_root: str | Path, per_dataset: int, split: str = "auto",
                   by_affordance: bool = False) -> EvalObjects:
    """Up to `per_dataset` objects of each dataset (datasets in name order) with their meshes, of `split` (SPLITS).
    by_affordance: an object once per affordance its rows ask for (each with that affordance's instruction)."""
    if per_dataset < 1:
        raise ValueError(f"per_dataset must be >= 1, got {per_dataset}")
    by_dataset, split = _candidates(open_table(annotated_table, AnnotatedRow).iter_rows(), split, by_affordance,
                                    annotated_table)
    result = EvalObjects([], split)
    for dataset in sorted(by_dataset):
        rows = by_dataset[dataset]
        meshes = _meshes(Path(samples_root) / dataset, {r.sample_id for r in rows})
        result.candidates[dataset] = len(rows)
        result.without_mesh[dataset] = sum(r.sample_id not in meshes for r in rows)
        for row in [r for r in rows if r.sample_id in meshes][:per_dataset]:
            vertices, faces = meshes[row.sample_id]
            result.objects.append(EvalObject(row.sample_id, dataset, row.object_id, row.instruction, row.affordance,
                                             np.asarray(row.object_points, np.float32),
                                             np.clip(np.asarray(row.affordance_map, np.float32), 0, 1),
                                             vertices, faces, row.object_class))
    if not result.objects:
        raise ValueError(f"annotated table {annotated_table}: no object with a mesh in {samples_root}/<dataset> "
                         f"({result.summary()})")
    return result


def sampler_inputs(obj: EvalObject, num_points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The object's points and map resampled to the generator's `num_points` (a fixed stream per seed)."""
    return resample(obj.object_points, obj.affordance_map, num_points, np.random.default_rng(seed))


def mano_joints(generator: GraspGenerator, mano: np.ndarray) -> np.ndarray:
    """(K, 61) MANO vectors -> (K, 21, 3) joints in metres, by the generator's MANO layer."""
    return layer_joints(generator.models.mano, mano)


@torch.no_grad()
def layer_joints(layer: ManoLayer, mano: np.ndarray) -> np.ndarray:
    """(K, 61) MANO vectors -> (K, 21, 3) joints in metres (the layer returns millimetres)."""
    device = next(layer.buffers()).device
    pose, betas, trans = split_mano(torch.as_tensor(mano, dtype=torch.float32, device=device))
    _, joints = layer(pose, betas, trans)
    return joints.double().cpu().numpy() / 1000.0


def generate_for_objects(generator: GraspGenerator, objects: list[EvalObject], k: int, embed: Embedder,
                         seed: int = 0, heads: int | None = None, tto_steps: int = 0, guidance: float | None = None,
                         ddim_steps: int | None = None) -> list[GeneratedGrasp]:
    """K grasps per object (seed + object index for the noise), tagged with the DAM head count (the
    checkpoint's unless given). tto_steps > 0: each object's grasps are then refined by that many Adam steps of
    test-time optimisation (tasks/grasp/evaluation/speed.py) and tagged with the method `tta`. guidance /
    ddim_steps: the sampler's, default the training config's."""
    from tasks.grasp.evaluation.speed import refine_grasps  # speed imports this module's neighbours

    heads = heads or generator.models.config.dam.heads
    texts = list(dict.fromkeys(o.instruction for o in objects))
    embeddings = dict(zip(texts, np.asarray(embed(texts), np.float32), strict=True))
    faces = generator.models.mano.th_faces.cpu().numpy().astype(np.int64)
    out = []
    for i, obj in enumerate(objects):
        points, values = sampler_inputs(obj, generator.train_config.num_points, seed)
        grasps = sample_grasps(generator, points, values, embeddings[obj.instruction], k, seed=seed + i,
                               ddim_steps=ddim_steps, guidance=guidance)
        mano, verts = grasps.mano, grasps.verts
        if tto_steps:
            mano = refine_grasps(generator, mano, points, values, tto_steps).mano
            verts = hand_vertices(generator.models.mano, mano)
        out += object_grasps(generator, obj, mano, verts, heads, "tta" if tto_steps else "model", faces)
    return out


def object_grasps(generator: GraspGenerator, obj: EvalObject, mano: np.ndarray, verts: np.ndarray | None = None,
                  heads: int | None = None, method: str = "model", faces: np.ndarray | None = None
                  ) -> list[GeneratedGrasp]:
    """(K, 61) MANO vectors of one object as GeneratedGrasps; verts (K, 778, 3) metres when already computed."""
    heads = heads or generator.models.config.dam.heads
    faces = generator.models.mano.th_faces.cpu().numpy().astype(np.int64) if faces is None else faces
    verts = hand_vertices(generator.models.mano, mano) if verts is None else verts
    joints = mano_joints(generator, mano)
    return [GeneratedGrasp(obj.object_id, verts[j].astype(np.float64), faces, joints[j],
                           mano[j, -3:].astype(np.float64), obj.object_vertices, obj.object_faces,
                           obj.affordance, obj.dataset, heads, obj.object_points, method=method)
            for j in range(len(mano))]


def parse_checkpoints(specs: Iterable[str]) -> dict[int, str]:
    """['1=a.pt', '4=b.pt'] -> {1: 'a.pt', 4: 'b.pt'}; ValueError naming the bad entry."""
    out: dict[int, str] = {}
    for spec in specs:
        heads, sep, path = spec.partition("=")
        if not sep or not heads.strip().isdigit() or not path:
            raise ValueError(f"{spec!r} is not HEADS=FILE (e.g. 2=runs/heads2/grasp_model.pt)")
        if int(heads) in out:
            raise ValueError(f"{spec!r}: heads {int(heads)} given twice")
        out[int(heads)] = path
    return out


def check_heads(checkpoints: Mapping[int, str], generators: Mapping[int, GraspGenerator]) -> None:
    """ValueError when a checkpoint's DAM does not have the head count it was given for."""
    for heads, generator in generators.items():
        actual = generator.models.config.dam.heads
        if actual != heads:
            raise ValueError(f"checkpoint {checkpoints[heads]} was given for {heads} DAM heads but its DAM has "
                             f"{actual}")
