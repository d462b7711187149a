"""Keep the synthetic grasps that hold their object: of several candidates per part, the ones that move the object
least in the drop test the generator is scored by (tasks/grasp/evaluation/simulation.py).

Nothing is dropped by a displacement threshold, which would empty the presses (one finger on a button rarely holds
the object whatever the pose): every part keeps its `per_part` grasps and every affordance stays in the set.
What it does to the ground truth and to a model trained on it: docs/grasp/training.md, runs val_plain and
val_stable (set presets generator-train and generator-train-stable).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tasks.grasp.evaluation.simulation import SimConfig, decompose_object, simulate_grasp
from tasks.synth.grasps import SynthGrasp
from tasks.synth.objects import SynthObject

FAILED_CM = 1e3  # a simulation that could not run ranks below every grasp that did


def drop_displacements(obj: SynthObject, grasps: Sequence[SynthGrasp], hand_faces: np.ndarray,
                       config: SimConfig = SimConfig(), work_dir: str | Path | None = None) -> np.ndarray:
    """(G,) displacement of `obj`'s centre of mass, cm, when dropped in each static hand (gravity -z, the synthetic
    objects' frame); FAILED_CM where the simulation could not run. One V-HACD decomposition of the object (~1-2 s),
    cached under `work_dir` when given, else in a temporary folder."""
    if not grasps:
        return np.zeros(0)
    with tempfile.TemporaryDirectory(prefix="afford-stable-") as tmp:
        decomposition = decompose_object(obj.vertices, obj.faces, work_dir or tmp, config)
        results = [simulate_grasp(decomposition, g.verts.astype(np.float64), hand_faces, config) for g in grasps]
    return np.array([r.displacement_cm if r.ok else FAILED_CM for r in results])


def keep_most_stable(grasps: Sequence[SynthGrasp], displacement_cm: np.ndarray, per_part: int) -> list[SynthGrasp]:
    """The `per_part` grasps of each part with the smallest displacement, in their original order.

    grasps: candidates of one object; displacement_cm: (G,), one per candidate. Ties keep the earlier candidate.
    ValueError when the lengths differ or per_part < 1."""
    displacement_cm = np.asarray(displacement_cm, dtype=np.float64)
    if displacement_cm.shape != (len(grasps),):
        raise ValueError(f"displacement_cm has shape {displacement_cm.shape}, expected ({len(grasps)},): one per "
                         f"grasp")
    if per_part < 1:
        raise ValueError(f"per_part must be >= 1, got {per_part}")
    by_part: dict[str, list[int]] = {}
    for i, grasp in enumerate(grasps):
        by_part.setdefault(grasp.part, []).append(i)
    kept = sorted(i for ids in by_part.values()
                  for i in sorted(ids, key=lambda i: (displacement_cm[i], i))[:per_part])
    return [grasps[i] for i in kept]
