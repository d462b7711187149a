"""Grasps that no model made, evaluated beside the generator's in Table 9 (method column; the third baseline,
`tta`, refines the model's own grasps and is made in inputs.generate_for_objects):

- `retrieval`: for each evaluated object, grasps of the training split with the same object class and affordance
  (other objects, never the evaluated one), placed on the new object unchanged. A row's MANO parameters are in its
  own object's frame, and every loader puts an object in its dataset's canonical frame, so the same parameters put
  the hand in the same place relative to the new object's frame ("placed by the same object frame").
- `ground_truth`: the dataset's own grasps of the evaluated object itself, any split, with the affordance asked
  for: the ceiling a generator tries to reach.

Only rows with MANO parameters count (AffordPose rows carry a GraspIt! mesh until `afford fit-mano` fits them).
Draws are seeded: without replacement while there are enough candidates, with replacement after.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from models.mano import ManoLayer
from schemas.annotated import AnnotatedRow
from tasks.grasp.data import hand_vertices, row_mano_vector
from tasks.grasp.evaluation.evaluate import GeneratedGrasp
from tasks.grasp.evaluation.inputs import EvalObject, layer_joints

POOL_BASELINES = ("retrieval", "ground_truth")  # made from the table's grasps (this module)
# `tta`: the model's own grasps refined by test-time optimisation (inputs.generate_for_objects, tto_steps)
BASELINES = ("tta", *POOL_BASELINES)


@dataclass(frozen=True)
class PoolGrasp:
    """One dataset grasp a baseline may use: its MANO vector (61,) in its object's frame, and what it grasps."""

    sample_id: str
    dataset: str
    object_id: str
    object_class: str
    affordance: str
    split: str
    mano: np.ndarray


class NoBaselineGrasp(ValueError):
    """No grasp in the pool fits an evaluated object; the message names the object, class and affordance."""


def grasp_pool(rows: Iterable[AnnotatedRow]) -> list[PoolGrasp]:
    """The rows with finite MANO parameters, as PoolGrasps (any split: each baseline picks its own)."""
    pool = []
    for row in rows:
        if row.hand_pose is None or row.hand_betas is None or row.hand_trans is None:
            continue
        vector = row_mano_vector(row)
        if np.isfinite(vector).all():
            pool.append(PoolGrasp(row.sample_id, row.dataset, row.object_id, row.object_class, row.affordance,
                                  row.split, vector))
    return pool


def candidates(pool: Sequence[PoolGrasp], obj: EvalObject, method: str) -> list[PoolGrasp]:
    """The pool grasps `method` may place on `obj`; NoBaselineGrasp naming the object when there are none."""
    if method == "retrieval":
        found = [g for g in pool if g.split == "train" and g.object_class == obj.object_class
                 and g.affordance == obj.affordance and (g.dataset, g.object_id) != (obj.dataset, obj.object_id)]
        wanted = f"training grasps of class {obj.object_class!r} with affordance {obj.affordance!r} on another object"
    elif method == "ground_truth":
        found = [g for g in pool if (g.dataset, g.object_id) == (obj.dataset, obj.object_id)
                 and g.affordance == obj.affordance]
        wanted = f"grasps of this object with affordance {obj.affordance!r}"
    else:
        raise ValueError(f"baseline {method!r} is not one of {', '.join(POOL_BASELINES)}")
    if not found:
        raise NoBaselineGrasp(f"{method}: no {wanted} for object {obj.dataset}/{obj.object_id} "
                              f"(MANO rows only)")
    return found


def baseline_grasps(objects: Sequence[EvalObject], pool: Sequence[PoolGrasp], method: str, mano: ManoLayer, k: int,
                    seed: int = 0) -> tuple[list[GeneratedGrasp], dict[str, str]]:
    """K grasps per object by `method`, and {object: why it has none} for the objects left out.

    The draw for object i uses the stream (seed, i): the same objects and pool give the same grasps."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    faces = mano.th_faces.cpu().numpy().astype(np.int64)
    out: list[GeneratedGrasp] = []
    skipped: dict[str, str] = {}
    for i, obj in enumerate(objects):
        try:
            found = candidates(pool, obj, method)
        except NoBaselineGrasp as reason:
            skipped[f"{obj.dataset}/{obj.object_id}"] = str(reason)
            continue
        rng = np.random.default_rng([seed, i])
        picks = rng.choice(len(found), size=k, replace=len(found) < k)
        vectors = np.stack([found[p].mano for p in picks]).astype(np.float32)  # (k, 61)
        verts = hand_vertices(mano, vectors)  # (k, 778, 3) metres
        joints = layer_joints(mano, vectors)  # (k, 21, 3) metres
        for j in range(k):
            out.append(GeneratedGrasp(obj.object_id, verts[j].astype(np.float64), faces, joints[j],
                                      vectors[j, -3:].astype(np.float64), obj.object_vertices, obj.object_faces,
                                      obj.affordance, obj.dataset, 0, obj.object_points, method=method))
    return out, skipped
