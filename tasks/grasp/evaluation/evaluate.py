"""Every grasp metric over already generated grasps, grouped into Table 9 rows by (dataset, DAM heads).

Per grasp: penetration volume (surface and filled voxels) and depth, contact, simulation displacement (in a process
pool), predicted affordance. Per group: means (a failed simulation counts as 10 cm), contact ratio by both published
conventions, diversity (k-means entropy and cluster size, n/a below 5 x k grasps), ACC. Work that depends only on
the object (filled voxels, V-HACD decomposition, surface samples) is done once per distinct object mesh.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ops.hand_mesh import check_hand_verts
from ops.mesh_check import check_mesh
from ops.surface_sampling import sample_surface
from schemas.affordance import normalise_affordance
from tasks.grasp.evaluation.accuracy import Classifier, affordance_accuracy
from tasks.grasp.evaluation.contact import CONTACT_THRESHOLD_M, contact_ratio
from tasks.grasp.evaluation.diversity import NUM_CLUSTERS, diversity
from tasks.grasp.evaluation.penetration import VOXEL_PITCH_M, GraspGeometry, ObjectGrasps, object_geometry
from tasks.grasp.evaluation.report import GridGrasp, GroupMetrics, render_table9
from tasks.grasp.evaluation.simulation import SimConfig, SimJob, SimResult, object_key, sim_pool, simulate_many
from tasks.pseudo_label.classifier_model import TrainResult

OBJECT_POINTS = 2048  # surface samples per object for the classifier, as ingest stores them


@dataclass(frozen=True)
class GeneratedGrasp:
    """One generated grasp in its object's frame, metres.

    hand_verts: (778, 3); hand_faces: (1538, 3) (ManoLayer.th_faces); joints: (21, 3); trans: (3,);
    object_vertices: (V, 3), object_faces: (F, 3), watertight; object_points: (M, 3) surface samples for the
    classifier, or None to sample OBJECT_POINTS from the mesh; requested_affordance: what the grasp was asked for.
    """

    object_id: str
    hand_verts: np.ndarray
    hand_faces: np.ndarray
    joints: np.ndarray
    trans: np.ndarray
    object_vertices: np.ndarray
    object_faces: np.ndarray
    requested_affordance: str
    dataset: str
    dam_heads: int
    object_points: np.ndarray | None = None
    method: str = "model"  # or a baseline's name (tasks/grasp/evaluation/baselines.py); Table 9 rows are per method


SIM_FAILED_DISPLACEMENT_CM = 10.0  # GraspTTA counts a simulation that could not run as 0.10 m


@dataclass(frozen=True)
class GraspScores:
    """Figures of one grasp: penetration (cm^3 by surface and filled voxels, cm), distance to the object (cm,
    0 when penetrating), contact, simulation result and, with a classifier, the predicted affordance."""

    penetration_volume_cm3: float
    penetration_depth_cm: float
    contact_distance_cm: float
    in_contact: bool
    sim: SimResult
    predicted_affordance: str | None = None
    filled_penetration_volume_cm3: float = 0.0


@dataclass
class EvalReport:
    groups: list[GroupMetrics]
    scores: list[GraspScores]  # one per input grasp, in input order
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage: penetration_contact, simulation, ...

    @property
    def markdown(self) -> str:
        return render_table9(self.groups)

    @property
    def grasps_per_second(self) -> float:
        """Overall throughput, simulation included."""
        return len(self.scores) / max(sum(self.seconds.values()), 1e-9)


def check_grasp(index: int, grasp: GeneratedGrasp) -> None:
    """ValueError naming the grasp (index, object) and the bad field."""
    try:
        check_hand_verts(grasp.hand_verts)
        check_mesh("hand", grasp.hand_verts, grasp.hand_faces)
        check_mesh("object", grasp.object_vertices, grasp.object_faces)
        if np.shape(grasp.joints) != (21, 3) or np.shape(grasp.trans) != (3,):
            raise ValueError(f"joints must be (21, 3) and trans (3,), got {np.shape(grasp.joints)}, "
                             f"{np.shape(grasp.trans)}")
        normalise_affordance(grasp.requested_affordance)
        if grasp.method == "model" and grasp.dam_heads < 1:
            raise ValueError(f"dam_heads must be >= 1 for a model's grasp, got {grasp.dam_heads}")
    except ValueError as exc:
        raise ValueError(f"grasp {index} (object {grasp.object_id}): {exc}") from None


def _object_points(grasps: Sequence[GeneratedGrasp], keys: list[str]) -> list[np.ndarray]:
    """(M, 3) object surface samples per grasp for the classifier: the grasp's own, else OBJECT_POINTS drawn from
    its mesh with seed 0 (once per object)."""
    drawn: dict[str, np.ndarray] = {}
    out = []
    for grasp, key in zip(grasps, keys, strict=True):
        if grasp.object_points is not None:
            out.append(np.asarray(grasp.object_points, np.float64))
            continue
        if key not in drawn:
            drawn[key] = sample_surface(grasp.object_vertices, grasp.object_faces, OBJECT_POINTS,
                                        np.random.default_rng(0)).points
        out.append(drawn[key])
    return out


def _penetration_contact(grasps: Sequence[GeneratedGrasp], by_object: dict[str, list[int]], pitch: float,
                         run: Callable) -> list[GraspGeometry]:
    """One task per object (voxelised once, then every grasp of it); results back in grasp order."""
    tasks = [ObjectGrasps(grasps[index[0]].object_vertices, grasps[index[0]].object_faces,
                          [(grasps[i].hand_verts, grasps[i].hand_faces) for i in index], pitch)
             for index in by_object.values()]
    geometry: list[GraspGeometry] = [GraspGeometry(0.0, 0.0, 0.0, 0.0)] * len(grasps)
    for index, values in zip(by_object.values(), run(object_geometry, tasks), strict=True):
        for i, value in zip(index, values, strict=True):
            geometry[i] = value
    return geometry


def _simulate(grasps: Sequence[GeneratedGrasp], keys: list[str], by_object: dict[str, list[int]],
              config: SimConfig, work_dir: str | Path | None, pool: ProcessPoolExecutor | None) -> list[SimResult]:
    jobs = [SimJob(np.asarray(g.hand_verts, np.float64), np.asarray(g.hand_faces, np.int64), key)
            for g, key in zip(grasps, keys, strict=True)]
    meshes = {key: (grasps[index[0]].object_vertices, grasps[index[0]].object_faces)
              for key, index in by_object.items()}
    with tempfile.TemporaryDirectory(prefix="afford-eval-") as tmp:
        return simulate_many(jobs, meshes, work_dir or tmp, config, workers=1, pool=pool)


def _group_metrics(dataset: str, method: str, heads: int, members: list[int], grasps: Sequence[GeneratedGrasp],
                   scores: list[GraspScores], k: int, seed: int, has_acc: bool) -> GroupMetrics:
    picked = [scores[i] for i in members]
    ran = np.array([s.sim.displacement_cm for s in picked if s.sim.ok], dtype=np.float64)
    sims = np.array([s.sim.displacement_cm if s.sim.ok else SIM_FAILED_DISPLACEMENT_CM for s in picked])
    spread = diversity(np.stack([grasps[i].joints for i in members]), k=k, seed=seed)
    acc = None
    if has_acc:
        hits = [normalise_affordance(s.predicted_affordance) == normalise_affordance(grasps[i].requested_affordance)
                for i, s in zip(members, picked, strict=True)]
        acc = 100.0 * float(np.mean(hits))
    return GroupMetrics(
        dataset=dataset, dam_heads=heads, num_grasps=len(members), method=method,
        penetration_volume_cm3=float(np.mean([s.penetration_volume_cm3 for s in picked])),
        penetration_depth_cm=float(np.mean([s.penetration_depth_cm for s in picked])),
        sim_displacement_cm=float(sims.mean()), sim_displacement_std_cm=float(sims.std()),
        sim_failed=len(picked) - len(ran),
        contact_ratio_percent=contact_ratio([s.in_contact for s in picked]),
        entropy=spread.entropy, cluster_size=spread.cluster_size, acc_percent=acc,
        filled_penetration_volume_cm3=float(np.mean([s.filled_penetration_volume_cm3 for s in picked])),
        sim_displacement_ran_cm=float(ran.mean()) if len(ran) else None,
        contact_ratio_volume_percent=contact_ratio([s.penetration_volume_cm3 > 0 for s in picked]),
        diversity_note=spread.note)


def evaluate_grasps(grasps: Sequence[GeneratedGrasp], classifier: TrainResult | Classifier | None = None, *,
                    classifier_points: int | None = None, sim_config: SimConfig = SimConfig(), workers: int = 0,
                    work_dir: str | Path | None = None, pitch: float = VOXEL_PITCH_M,
                    contact_threshold_m: float = CONTACT_THRESHOLD_M, k: int = NUM_CLUSTERS,
                    seed: int = 0, pool: ProcessPoolExecutor | None = None) -> EvalReport:
    """All metrics of `grasps`, one Table 9 row per (dataset, method, dam_heads) in first-seen order.

    classifier: the pseudo-labelling checkpoint (load_trained) or a logits callable (then classifier_points is
    required); None leaves ACC empty. Penetration, contact and simulation run in `pool` (a
    tasks.grasp.evaluation.simulation.sim_pool, reused across calls: starting one costs seconds) or else in
    `workers` new processes (0: one per CPU; 1: all in this process). work_dir holds the V-HACD files
    (temporary when None).
    """
    if not grasps:
        raise ValueError("evaluate_grasps needs at least one grasp, got none")
    if contact_threshold_m < 0:
        raise ValueError(f"contact_threshold_m must be >= 0, got {contact_threshold_m}")
    for i, grasp in enumerate(grasps):
        check_grasp(i, grasp)
    if pool is None and workers != 1:
        with sim_pool(workers) as own:
            return evaluate_grasps(grasps, classifier, classifier_points=classifier_points, sim_config=sim_config,
                                   work_dir=work_dir, pitch=pitch, contact_threshold_m=contact_threshold_m, k=k,
                                   seed=seed, pool=own)
    run = pool.map if pool is not None else map
    keys = [object_key(g.object_vertices, g.object_faces) for g in grasps]
    by_object: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_object.setdefault(key, []).append(i)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    geometry = _penetration_contact(grasps, by_object, pitch, run)
    seconds["penetration_contact"] = time.perf_counter() - start
    start = time.perf_counter()
    sims = _simulate(grasps, keys, by_object, sim_config, work_dir, pool)
    seconds["simulation"] = time.perf_counter() - start
    predicted: list[str | None] = [None] * len(grasps)
    if classifier is not None:
        start = time.perf_counter()
        predicted = list(affordance_accuracy(classifier, [g.hand_verts for g in grasps], _object_points(grasps, keys),
                                             [g.requested_affordance for g in grasps],
                                             num_points=classifier_points).predicted)
        seconds["accuracy"] = time.perf_counter() - start
    scores = [GraspScores(volume, depth, distance * 100, distance <= contact_threshold_m, sim, label, filled)
              for (volume, depth, distance, filled), sim, label in zip(geometry, sims, predicted, strict=True)]
    start = time.perf_counter()
    members: dict[tuple[str, str, int], list[int]] = {}
    for i, grasp in enumerate(grasps):
        members.setdefault((grasp.dataset, grasp.method, grasp.dam_heads), []).append(i)
    groups = [_group_metrics(dataset, method, heads, index, grasps, scores, k, seed, classifier is not None)
              for (dataset, method, heads), index in members.items()]
    seconds["diversity"] = time.perf_counter() - start
    return EvalReport(groups, scores, seconds)


def grid_items(grasps: Sequence[GeneratedGrasp], scores: Sequence[GraspScores] | None = None) -> list[GridGrasp]:
    """GridGrasps for tasks.grasp.evaluation.report.render_grasp_grid, captioned with the requested affordance and, with
    scores, the predicted one and the simulation displacement."""
    items = []
    for i, grasp in enumerate(grasps):
        caption = grasp.requested_affordance
        if scores is not None:
            score = scores[i]
            if score.predicted_affordance is not None:
                caption += f" -> {score.predicted_affordance}"
            caption += f", {score.sim.displacement_cm:.1f} cm" if score.sim.ok else ", sim failed"
        items.append(GridGrasp(grasp.object_id, grasp.object_vertices, grasp.object_faces, grasp.hand_verts,
                               grasp.hand_faces, caption))
    return items
