"""Regions of the MANO hand that touch an object in a grasp: the fingertip pads and the palm.

Computed from the rest-pose template (778, 3) and the skinning weights (778, 16), so they hold for any hand built
to MANO's topology (the bundled synthetic hand or the official model). Used where a grasp must touch with the
right part of the hand: the synthetic grasps' contact targets (tasks/synth/grasps.py) and the contact-prone
vertices of the hand-centric contact loss (models/grasp_losses.hand_contact_loss).
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

from models.synthetic_hand_spec import TIP_VERTICES

TIP_RADIUS = 0.012  # metres: a fingertip pad is the template vertices within 12 mm of the tip vertex


def hand_regions(v_template: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Vertex ids of the regions a grasp may be asked to touch with (template frame: palm faces +y).

    v_template: (778, 3) metres; weights: (778, 16) skinning weights (joint 0 is the wrist / palm).
    Returns {"palm", "tips" (all five pads), "index_tip", "thumb_index"} -> sorted or concatenated id arrays.
    """
    template, weights = np.asarray(v_template), np.asarray(weights)
    if template.shape != (778, 3) or weights.shape[0] != 778:
        raise ValueError(f"v_template must be (778, 3) and weights (778, J), got {template.shape}, {weights.shape}")
    tips = {name: np.flatnonzero(np.linalg.norm(template - template[v], axis=1) < TIP_RADIUS)
            for name, v in TIP_VERTICES.items()}
    wrist = weights[:, 0] > 0.6
    palm = np.flatnonzero(wrist & (template[:, 1] > np.median(template[wrist, 1])) & (template[:, 0] > 0.03))
    return {
        "palm": palm,
        "tips": np.concatenate([tips[d] for d in ("index", "middle", "ring", "pinky", "thumb")]),
        "index_tip": tips["index"],
        "thumb_index": np.concatenate([tips["thumb"], tips["index"]]),
    }


def contact_prone(v_template: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sorted vertex ids of the fingertip pads and the palm: the hand's usual contact regions."""
    regions = hand_regions(v_template, weights)
    return np.unique(np.concatenate([regions["tips"], regions["palm"]]))


_PRONE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # layer -> {(stride, device): ids}


def layer_contact_prone(mano_layer, stride: int = 1) -> torch.Tensor:
    """(P,) long ids of the contact-prone vertices of a ManoLayer's hand, on its device, counted among every
    `stride`-th vertex (the subset the training losses evaluate): id i means vertex i * stride.

    Kept per layer, stride and device, so a training step does not copy the template to the host each time."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    device = mano_layer.th_v_template.device
    known = _PRONE.setdefault(mano_layer, {})
    if (stride, device) not in known:
        template = mano_layer.th_v_template.detach().cpu().numpy().reshape(-1, 3)  # the layer keeps (1, 778, 3)
        prone = contact_prone(template, mano_layer.th_weights.detach().cpu().numpy())
        kept = np.arange(0, len(template), stride)
        known[(stride, device)] = torch.as_tensor(np.flatnonzero(np.isin(kept, prone)), dtype=torch.long,
                                                  device=device)
    return known[(stride, device)]
