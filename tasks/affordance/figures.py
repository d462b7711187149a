"""Per-point affordance maps v_i in [0, 1] on an object point cloud: a PNG grid (one column per map, one row per
view) for people, and the numbers that say how a map moves between instructions."""

from __future__ import annotations

import os
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure

# Drawn on a bare Figure with the Agg canvas, not pyplot (as tasks/pseudo_label/report.py): no global state, so
# figures can be made from a thread pool, and no display is needed.
DPI = 100
PANEL_IN = 3.2  # inches per panel side -> 320 px
COLORBAR_IN = 0.9  # extra width for the shared colour bar
TITLE_WIDTH = 40  # characters per title line; instructions are often longer than a panel is wide
DEFAULT_VIEWS = ((20.0, -60.0), (20.0, 120.0))  # (elevation, azimuth) in degrees: front-left and back-right
# YlOrRd on a light-grey base: v = 0 reads as bare object surface, not as a faint yellow "a little affordance".
V_COLORMAP = LinearSegmentedColormap.from_list(
    "v_i", ["#d4d4d4", "#fed976", "#feb24c", "#fd8d3c", "#e31a1c", "#800026"])
POINT_SIZE = 6.0  # marker area in pt^2: dense enough to read a surface at 2k points, single points still visible


def _check_points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"points must be (N, 3) with N > 0, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points contain NaN or infinite coordinates")
    return points


def _check_maps(maps: Sequence[np.ndarray], num_points: int) -> list[np.ndarray]:
    """Each map (N,) finite and within [0, 1]; at least one map."""
    if len(maps) == 0:
        raise ValueError("maps is empty: give at least one (N,) affordance map")
    checked = []
    for i, values in enumerate(maps):
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (num_points,):
            raise ValueError(f"maps[{i}] must have shape ({num_points},) like points, got {values.shape}")
        if np.isnan(values).any():
            raise ValueError(f"maps[{i}] contains NaN at {int(np.isnan(values).sum())} points")
        if values.min() < 0.0 or values.max() > 1.0:
            raise ValueError(f"maps[{i}] must lie in [0, 1], got range [{values.min():g}, {values.max():g}]")
        checked.append(values)
    return checked


def _check_views(views: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    views = [tuple(view) for view in views]
    if not views or any(len(view) != 2 for view in views):
        raise ValueError(f"views must be one or more (elevation, azimuth) pairs, got {views!r}")
    return [(float(elevation), float(azimuth)) for elevation, azimuth in views]


def _cube(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (3,) and half side of the cube around the cloud, so every axis gets the same scale."""
    low, high = points.min(0), points.max(0)
    return (low + high) / 2, max(float((high - low).max()) / 2 * 1.05, 1e-6)  # > 0 for a single point


def _save_atomic(figure: Figure, path: Path) -> Path:
    """Write the PNG under a temporary name beside `path`, then rename: no reader ever sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        FigureCanvasAgg(figure)
        figure.savefig(scratch, dpi=DPI, format="png")  # format given: the scratch name does not end in .png
        os.chmod(scratch, 0o644)  # mkstemp makes owner-only files; figures are read by the review app
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return path


def render_maps(points: np.ndarray, maps: Sequence[np.ndarray], titles: Sequence[str], path: str | Path,
                suptitle: str | None = None,
                views: Sequence[tuple[float, float]] = DEFAULT_VIEWS) -> Path:
    """PNG of M affordance maps on one cloud: column j = maps[j] under titles[j], row r = views[r], coloured by
    v_i on a fixed [0, 1] scale with one shared colour bar. Returns the written path.

    points: (N, 3) metres; maps: M arrays (N,) in [0, 1]; titles: M strings (wrapped at ~40 characters);
    views: (elevation, azimuth) pairs in degrees. Size: (320 M + 90) x (320 R + title lines) px.
    """
    points = _check_points(points)
    maps = _check_maps(maps, len(points))
    if isinstance(titles, str) or len(titles) != len(maps):
        raise ValueError(f"titles must be a sequence of {len(maps)} strings (one per map), got {titles!r}")
    views = _check_views(views)
    centre, half = _cube(points)
    wrapped = [textwrap.fill(str(title), TITLE_WIDTH) for title in titles]
    title_lines = max(text.count("\n") + 1 for text in wrapped) + (2 if suptitle else 0)

    figure = Figure(figsize=(PANEL_IN * len(maps) + COLORBAR_IN, PANEL_IN * len(views) + 0.2 * title_lines),
                    layout="constrained")
    norm = Normalize(vmin=0.0, vmax=1.0)  # fixed, so colours compare across panels and figures
    panels = []
    for row, (elevation, azimuth) in enumerate(views):
        for column, values in enumerate(maps):
            axes = figure.add_subplot(len(views), len(maps), row * len(maps) + column + 1, projection="3d")
            # depthshade off: shading would fade far points and make the colour disagree with the colour bar
            axes.scatter(*points.T, c=values, cmap=V_COLORMAP, norm=norm, s=POINT_SIZE, linewidths=0,
                         depthshade=False)
            for setter, c in zip((axes.set_xlim, axes.set_ylim, axes.set_zlim), centre, strict=True):
                setter(c - half, c + half)
            axes.set_box_aspect((1, 1, 1), zoom=1.3)  # mplot3d's default leaves a wide empty margin
            axes.view_init(elev=elevation, azim=azimuth)
            axes.set_axis_off()
            if row == 0:
                axes.set_title(wrapped[column], fontsize=9)
            panels.append(axes)
    figure.colorbar(ScalarMappable(norm=norm, cmap=V_COLORMAP), ax=panels, label="v_i", shrink=0.8)
    if suptitle:
        figure.suptitle(textwrap.fill(suptitle, TITLE_WIDTH * len(maps)), fontsize=11)
    return _save_atomic(figure, Path(path))


def map_change(gt_region: np.ndarray, maps: Sequence[np.ndarray]) -> list[dict[str, float]]:
    """How each map sits on a ground-truth region R (gt_region: (N,) bool, neither empty nor everything).

    Per map v (N,): {"mean_inside": mean_{i in R} v_i, "mean_outside": mean_{i not in R} v_i,
    "mass_inside": sum_{i in R} v_i / sum_i v_i (0 when sum_i v_i = 0)}.
    """
    region = np.asarray(gt_region)
    if region.ndim != 1 or region.dtype != np.bool_:
        raise ValueError(f"gt_region must be a (N,) bool mask, got shape {region.shape} dtype {region.dtype}")
    if not region.any() or region.all():
        # one side empty: its mean is undefined and "inside vs outside" says nothing
        raise ValueError(f"gt_region must mark some but not all points, got {int(region.sum())} of {len(region)}")
    changes = []
    for values in _check_maps(maps, len(region)):
        total = float(values.sum())
        changes.append({"mean_inside": float(values[region].mean()),
                        "mean_outside": float(values[~region].mean()),
                        "mass_inside": float(values[region].sum()) / total if total > 0 else 0.0})
    return changes
