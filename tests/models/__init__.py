"""Tests of models/. `random_mano_params` is a small, well-formed but random MANO model for them."""

from __future__ import annotations

import numpy as np

from models.mano_pickle import ManoParams

# MANO's kinematic tree: wrist, then index, middle, pinky, ring, thumb chains of three joints each.
MANO_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]


def random_mano_params(seed: int = 0, root_parent: int = 2**32 - 1) -> ManoParams:
    """Random arrays with MANO's shapes and structure: regressor rows are convex weights, skinning weights sum to 1
    (exactly, in float32 too: multiples of 2^-16), PCA components are orthonormal, the tree is MANO's (root parent
    stored as in the official file)."""
    rng = np.random.default_rng(seed)
    v_template = rng.normal(scale=0.03, size=(778, 3))
    regressor = rng.random((16, 778)) * (rng.random((16, 778)) < 0.05)  # each joint averages a few vertices
    regressor[:, 0] += 1e-3  # never an empty row
    logits = rng.normal(scale=2.0, size=(778, 16))
    weights = np.round(np.exp(logits) / np.exp(logits).sum(1, keepdims=True) * 2**16)  # softmax, in 1/65536ths
    weights[np.arange(778), weights.argmax(1)] += 2**16 - weights.sum(1)  # rows sum to exactly 65536
    components, _ = np.linalg.qr(rng.normal(size=(45, 45)))
    return ManoParams(
        v_template=v_template,
        f=rng.integers(0, 778, size=(1538, 3)),
        J_regressor=regressor / regressor.sum(1, keepdims=True),
        weights=weights / 2**16,
        kintree_table=np.array([[root_parent, *MANO_PARENTS[1:]], list(range(16))], dtype=np.int64),
        shapedirs=rng.normal(scale=1e-3, size=(778, 3, 10)),
        posedirs=rng.normal(scale=1e-3, size=(778, 3, 135)),
        hands_components=components,
        hands_mean=rng.normal(scale=0.2, size=45),
    )
