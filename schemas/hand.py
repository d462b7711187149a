"""How a row holds its hand: MANO parameters and the 778 MANO vertices, or a dataset's own posed hand mesh.

AffordPose stores GraspIt!'s ManoHand (16 rigid parts, 946 vertices, 1828 faces) already posed in the object
frame, with no MANO parameters: such a row keeps the mesh (hand_verts + hand_faces), names the model in
hand_model, and keeps the GraspIt! joint values in hand_dofs.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

HandModel = Literal["mano", "graspit_manohand"]
MANO_NUM_VERTS = 778


def check_hand(hand_model: str, hand_pose: object, hand_verts: np.ndarray | None,
               hand_faces: np.ndarray | None, fitted: bool = False) -> None:
    """ValueError naming the field when the hand fields do not describe one hand of `hand_model`.
    MANO: hand_pose or the (778, 3) vertices, no hand_faces (the model's own). Other models: hand_verts and
    hand_faces indexing them, and a MANO pose only when it was fitted to that mesh (`fitted`)."""
    if hand_model == "mano":
        if hand_pose is None and hand_verts is None:
            raise ValueError("a sample needs hand_pose (MANO) or hand_verts (mesh); both are missing")
        if hand_verts is not None and hand_verts.shape != (MANO_NUM_VERTS, 3):
            raise ValueError(f"hand_verts of a MANO hand must be ({MANO_NUM_VERTS}, 3), got {hand_verts.shape}; "
                             f"set hand_model for another hand")
        if hand_faces is not None:
            raise ValueError("hand_faces is for hands other than MANO (MANO's faces are the model's)")
        return
    if hand_pose is not None and not fitted:
        raise ValueError(f"hand_pose (MANO) given for a {hand_model} hand without a fit error (mano_fit_error_mm)")
    if hand_verts is None or hand_faces is None:
        raise ValueError(f"a {hand_model} hand needs hand_verts and hand_faces")
    if len(hand_faces) == 0 or hand_faces.min() < 0 or hand_faces.max() >= len(hand_verts):
        raise ValueError(f"hand_faces index outside 0..{len(hand_verts) - 1} (or empty)")


def hand_faces_for(hand_faces: np.ndarray | None, mano_faces: np.ndarray) -> np.ndarray:
    """The triangles to draw a row's hand with: its own (a non-MANO hand) or MANO's (F, 3)."""
    return mano_faces if hand_faces is None else hand_faces
