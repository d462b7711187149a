"""A synthetic dataset's own grasps as evaluation inputs (GeneratedGrasp): the ground-truth rows, and the
stand-in for generator output in tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.mano import ManoLayer
from tasks.grasp.evaluation.evaluate import GeneratedGrasp
from tasks.synth.grasps import SynthGrasp
from tasks.synth.objects import SynthObject


def from_synth_grasps(obj: SynthObject, synth: Sequence[SynthGrasp], layer: ManoLayer, dataset: str,
                      dam_heads: int = 1) -> list[GeneratedGrasp]:
    """A synthetic dataset's own grasps as GeneratedGrasps: the ground-truth row of a table, and the stand-in for
    generator output in tests and benchmarks. Joints come from MANO with the grasp's pose, shape and translation,
    which places the hand exactly as tasks/synth/grasps.py did (rotation about the rest wrist, then trans)."""
    if not synth:
        return []
    pose = torch.tensor(np.stack([g.pose for g in synth]), dtype=torch.float32)  # (B, 48) axis-angle
    betas = torch.tensor(np.stack([g.betas for g in synth]), dtype=torch.float32)
    trans = torch.tensor(np.stack([g.trans for g in synth]), dtype=torch.float32)
    with torch.no_grad():
        verts, joints = (t.double().numpy() / 1000 for t in layer(pose, betas, trans))  # mm -> m
    faces = layer.th_faces.numpy()
    return [GeneratedGrasp(obj.object_id, verts[i], faces, joints[i], g.trans.astype(np.float64), obj.vertices,
                           obj.faces, g.affordance, dataset, dam_heads) for i, g in enumerate(synth)]

