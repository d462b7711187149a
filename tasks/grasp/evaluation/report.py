"""Grasp evaluation report pieces: the Table 9 and Table 5 layouts of the AffordGrasp supplementary as Markdown,
and a PNG grid of generated grasps (two views each, several per object, like its Fig. 14-16)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and CI

import matplotlib.pyplot as plt
import numpy as np
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

# The two-view picture's shading and colours, so the grid reads like ops/render.py's pairs.
from ops.render import DEFAULT_VIEWS, HAND_COLOUR, shade

OBJECT_COLOUR = "#9db4c8"


@dataclass(frozen=True)
class GroupMetrics:
    """One Table 9 row: the grasps generated for one dataset by the model with `dam_heads` DAM heads.

    Each figure follows a published convention (docs/grasp/evaluation.md names the source file of each):
    penetration_volume_cm3 counts the object's surface voxels inside the hand (GraspTTA / FastGrasp);
    filled_penetration_volume_cm3 counts its filled voxels (closer to the true volume, not comparable).
    sim_displacement_cm is the mean over all grasps with a failed simulation counted as 10 cm (GraspTTA);
    sim_displacement_ran_cm the mean over the simulations that ran (None when none did); `sim_failed` counts
    the failures. contact_ratio_percent: a hand vertex inside or within 5 mm of the object (GraspTTA);
    contact_ratio_volume_percent: non-zero intersection volume (FastGrasp's OakInk evaluation). entropy and
    cluster_size are None below 5 x k grasps (`diversity_note` says why). acc_percent is None without a
    classifier.
    """

    dataset: str
    dam_heads: int
    num_grasps: int
    penetration_volume_cm3: float
    penetration_depth_cm: float
    sim_displacement_cm: float | None
    sim_displacement_std_cm: float | None
    sim_failed: int
    contact_ratio_percent: float
    entropy: float | None
    cluster_size: float | None
    acc_percent: float | None
    filled_penetration_volume_cm3: float | None = None
    sim_displacement_ran_cm: float | None = None
    contact_ratio_volume_percent: float | None = None
    diversity_note: str = ""
    method: str = "model"  # or a baseline (tasks/grasp/evaluation/baselines.py); dam_heads 0 for grasps no model made


@dataclass(frozen=True)
class SpeedRow:
    """One Table 5 column: seconds per grasp of a method, one grasp at a time and in batches of `batch_size`."""

    method: str
    single_s: float
    batched_s: float | None = None
    batch_size: int | None = None


# (header, value, better, format): better is "min" or "max"; the best value per dataset is bold, as in the paper.
# The first seven are Table 9's columns in its order, each header naming the convention it follows; the last
# three are the same quantities by the other conventions.
_Column = tuple[str, Callable[[GroupMetrics], float | None], str, str]
TABLE9_COLUMNS: tuple[_Column, ...] = (
    ("Penetration volume (cm³, surface voxels) ↓", lambda g: g.penetration_volume_cm3, "min", "2f"),
    ("Penetration depth (cm) ↓", lambda g: g.penetration_depth_cm, "min", "2f"),
    ("Simulation displacement (cm, failed = 10) ↓", lambda g: g.sim_displacement_cm, "min", "displacement"),
    ("Contact ratio (%, ≤ 5 mm) ↑", lambda g: g.contact_ratio_percent, "max", "1f"),
    ("Entropy ↑", lambda g: g.entropy, "max", "2f"),
    ("Cluster size ↑", lambda g: g.cluster_size, "max", "2f"),
    ("ACC (%) ↑", lambda g: g.acc_percent, "max", "1f"),
    ("Filled-voxel volume (cm³) ↓", lambda g: g.filled_penetration_volume_cm3, "min", "2f"),
    ("Contact ratio (%, volume > 0) ↑", lambda g: g.contact_ratio_volume_percent, "max", "1f"),
    ("Displacement, simulations that ran (cm) ↓", lambda g: g.sim_displacement_ran_cm, "min", "2f"),
)


def _cell(group: GroupMetrics, form: str, value: float | None, best: bool) -> str:
    if value is None or math.isnan(value):
        text = "n/a"
    elif form == "displacement":  # mean ± std, failures counted as 10 cm
        text = f"{value:.2f} ± {group.sim_displacement_std_cm:.2f}"
    else:
        text = f"{value:.{form}}"
    if form == "displacement" and group.sim_failed:
        text += f" ({group.sim_failed} failed)"
    return f"**{text}**" if best else text


def _best(groups: Sequence[GroupMetrics], value: Callable[[GroupMetrics], float | None], better: str) -> set[int]:
    """Indices (within `groups`) holding the best value of one column (ties all bold, as in the paper); none when
    fewer than two rows have values or all values are equal, where bold would single nothing out."""
    present = [(i, v) for i, g in enumerate(groups) if (v := value(g)) is not None and not math.isnan(v)]
    target = (min if better == "min" else max)((v for _, v in present), default=None)
    best = {i for i, v in present if math.isclose(v, target, rel_tol=1e-9, abs_tol=1e-12)}
    return best if len(present) >= 2 and len(best) < len(present) else set()


METHOD_NAMES = {"model": "model", "tta": "test-time optimisation", "retrieval": "retrieval",
                "ground_truth": "ground truth"}


def _order(group: GroupMetrics) -> tuple[int, int]:
    """The model's rows first (heads ascending), then the baselines in METHOD_NAMES order."""
    methods = list(METHOD_NAMES)
    return (methods.index(group.method) if group.method in methods else len(methods), group.dam_heads)


def render_table9(groups: Sequence[GroupMetrics]) -> str:
    """Markdown table, one row per (dataset, method, DAM heads): datasets in first-seen order, the model's rows
    (heads ascending) before the baselines', the dataset named on its first row only and the best value of each
    column within a dataset in bold. A Method column appears when there is more than the model."""
    if not groups:
        raise ValueError("render_table9 needs at least one group, got none")
    datasets = list(dict.fromkeys(g.dataset for g in groups))
    methods = any(g.method != "model" for g in groups)
    header = ["Dataset", *(["Method"] if methods else []), "DAM heads", "Grasps", *(c[0] for c in TABLE9_COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for dataset in datasets:
        rows = sorted((g for g in groups if g.dataset == dataset), key=_order)
        best = [_best(rows, value, better) for _, value, better, _ in TABLE9_COLUMNS]
        for i, group in enumerate(rows):
            method = [METHOD_NAMES.get(group.method, group.method)] if methods else []
            heads = str(group.dam_heads) if group.method in ("model", "tta") else "-"
            cells = [dataset if i == 0 else "", *method, heads, str(group.num_grasps)]
            cells += [_cell(group, form, value(group), i in best[c])
                      for c, (_, value, _, form) in enumerate(TABLE9_COLUMNS)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table9_notes(groups: Sequence[GroupMetrics]) -> str:
    """The sentences a reader of Table 9 needs: why a diversity cell is n/a, how failures were counted."""
    notes = list(dict.fromkeys(f"{g.dataset}, {_who(g)}: diversity {g.diversity_note}"
                               for g in groups if g.diversity_note))
    failed = sum(g.sim_failed for g in groups)
    if failed:
        notes.append(f"{failed} simulation(s) failed; each counts as 10 cm in the displacement column, as GraspTTA "
                     f"counts them, and is left out of the last column.")
    return "\n".join(f"- {n}" for n in notes)


def _who(group: GroupMetrics) -> str:
    name = METHOD_NAMES.get(group.method, group.method)
    return f"{group.dam_heads} head(s)" if group.method == "model" else name


def render_table5(rows: Sequence[SpeedRow]) -> str:
    """Markdown table in Table 5's layout: one column per method, rows of seconds per grasp (single, batched)."""
    if not rows:
        raise ValueError("render_table5 needs at least one method, got none")
    batch_sizes = {r.batch_size for r in rows if r.batched_s is not None}
    batched_label = "Batched (s / grasp)" if len(batch_sizes) != 1 else f"Batched, {batch_sizes.pop()} (s / grasp)"
    lines = ["| Method | " + " | ".join(r.method for r in rows) + " |", "|" + "---|" * (len(rows) + 1),
             "| Single (s / grasp) | " + " | ".join(f"{r.single_s:.3g}s" for r in rows) + " |",
             f"| {batched_label} | " + " | ".join("n/a" if r.batched_s is None else f"{r.batched_s:.3g}s"
                                                  for r in rows) + " |"]
    return "\n".join(lines)


@dataclass(frozen=True)
class GridGrasp:
    """One grasp to draw. object_vertices: (V, 3) m, object_faces: (F, 3); hand_verts: (778, 3) m,
    hand_faces: (1538, 3); object_id groups grasps into rows; caption is printed under the first view."""

    object_id: str
    object_vertices: np.ndarray
    object_faces: np.ndarray
    hand_verts: np.ndarray
    hand_faces: np.ndarray
    caption: str = ""


def _draw(axes, grasp: GridGrasp, view: tuple[float, float]) -> None:
    meshes = [(np.asarray(grasp.object_vertices, np.float64), np.asarray(grasp.object_faces, np.int64), OBJECT_COLOUR),
              (np.asarray(grasp.hand_verts, np.float64), np.asarray(grasp.hand_faces, np.int64), HAND_COLOUR)]
    # One collection for both meshes: matplotlib depth-sorts faces within a collection only, so separate ones
    # would draw the hand over the object even where the object is in front.
    triangles = np.concatenate([vertices[faces] for vertices, faces, _ in meshes])
    shaded = np.concatenate([shade(vertices, faces, np.tile(matplotlib.colors.to_rgb(colour), (len(faces), 1)))
                             for vertices, faces, colour in meshes])
    axes.add_collection3d(Poly3DCollection(triangles, facecolors=shaded, edgecolors="none"))
    every = np.concatenate([m[0] for m in meshes])
    centre, half = (every.max(0) + every.min(0)) / 2, (every.max(0) - every.min(0)).max() / 2 * 1.05
    for setter, c in zip((axes.set_xlim, axes.set_ylim, axes.set_zlim), centre, strict=True):
        setter(c - half, c + half)
    axes.set_box_aspect((1, 1, 1))
    axes.view_init(elev=view[0], azim=view[1])
    axes.set_axis_off()


def render_grasp_grid(path: str | Path, grasps: Sequence[GridGrasp], per_object: int = 3,
                      views: Sequence[tuple[float, float]] = DEFAULT_VIEWS, panel_px: int = 220,
                      title: str | None = None) -> Path:
    """PNG with one row per object (first-seen order) and, for each of its first `per_object` grasps, one panel
    per view. Returns the path written."""
    if not grasps:
        raise ValueError("render_grasp_grid needs at least one grasp, got none")
    if per_object < 1 or not views:
        raise ValueError(f"per_object must be >= 1 and views non-empty, got {per_object}, {list(views)}")
    rows: dict[str, list[GridGrasp]] = {}
    for grasp in grasps:
        rows.setdefault(grasp.object_id, [])
        if len(rows[grasp.object_id]) < per_object:
            rows[grasp.object_id].append(grasp)
    columns = max(len(r) for r in rows.values()) * len(views)
    dpi = 100
    figure = plt.figure(figsize=(panel_px * columns / dpi, panel_px * len(rows) / dpi), dpi=dpi)
    for r, row in enumerate(rows.values()):
        for g, grasp in enumerate(row):
            for v, view in enumerate(views):
                axes = figure.add_subplot(len(rows), columns, r * columns + g * len(views) + v + 1, projection="3d")
                _draw(axes, grasp, view)
                if v == 0 and grasp.caption:
                    axes.set_title(grasp.caption, fontsize=7)
    figure.subplots_adjust(left=0, right=1, bottom=0, top=0.88 if title else 0.97, wspace=0, hspace=0.05)
    if title:
        figure.suptitle(title, fontsize=10)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out
