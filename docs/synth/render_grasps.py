"""Regenerate docs/synth/grasps/<category>.png: one synthetic grasp per object category, two views each.

    .venv/bin/python docs/synth/render_grasps.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.mano import ManoLayer
from models.synthetic_hand import build_synthetic_hand
from ops.render import render_pair
from tasks.synth.grasps import grasp_quality, synthesize_grasps
from tasks.synth.objects import CATEGORIES, make_object

OUT = Path(__file__).parent / "grasps"


def main() -> None:
    params = build_synthetic_hand("right")
    layer = ManoLayer(params=params, use_pca=False, flat_hand_mean=True)
    rng = np.random.default_rng(11)
    OUT.mkdir(exist_ok=True)
    for category in CATEGORIES:
        obj = make_object(category, rng, f"{category}-doc")
        grasp = synthesize_grasps(obj, params, layer, per_part=1, rng=rng)[0]
        quality = grasp_quality(obj, grasp.verts)
        title = (f"{category}: {grasp.affordance} on the {grasp.part} "
                 f"(penetration {quality.penetration_depth_mm:.1f} mm)")
        render_pair(OUT / f"{category}.png", obj.vertices, obj.faces, grasp.verts, params.f,
                    object_vertex_labels=obj.vertex_labels, title=title, size_px=300)
        print(OUT / f"{category}.png", title)


if __name__ == "__main__":
    main()
