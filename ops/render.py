"""Pictures of a hand-object pair from two views (PNG), for people rather than models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and CI

import matplotlib.pyplot as plt
import numpy as np
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

# AffordPose label id -> colour, so the object's parts read at a glance (id 2 is unused by AffordPose).
LABEL_COLOURS = {
    0: "#c8c8c8", 1: "#e6194b", 3: "#3cb44b", 4: "#4363d8", 5: "#f58231",
    6: "#911eb4", 7: "#42d4f4", 8: "#f032e6", 9: "#bfef45",
}
HAND_COLOUR = "#e8b796"
DEFAULT_VIEWS = ((20.0, -60.0), (20.0, 120.0))  # (elevation, azimuth) in degrees: front-left and back-right


def shade(vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Lambert shading from a fixed light so shapes read without a renderer. colours: (F, 3) -> (F, 4)."""
    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    light = np.array([0.4, -0.5, 0.8]) / np.linalg.norm([0.4, -0.5, 0.8])
    intensity = 0.45 + 0.55 * np.abs(normals @ light)
    return np.concatenate([colours * intensity[:, None], np.ones((len(faces), 1))], axis=1)


def _face_colours(faces: np.ndarray, vertex_labels: np.ndarray | None, default: str) -> np.ndarray:
    if vertex_labels is None:
        return np.tile(matplotlib.colors.to_rgb(default), (len(faces), 1))
    # A face takes the label most of its vertices carry (the first vertex's when all three differ).
    labels = vertex_labels[faces]
    majority = np.where(labels[:, 1] == labels[:, 2], labels[:, 1], labels[:, 0])
    return np.array([matplotlib.colors.to_rgb(LABEL_COLOURS.get(int(i), "#808080")) for i in majority])


def render_pair(path: str | Path, object_vertices: np.ndarray, object_faces: np.ndarray,
                hand_verts: np.ndarray | None = None, hand_faces: np.ndarray | None = None, *,
                object_vertex_labels: np.ndarray | None = None, title: str | None = None,
                views: Sequence[tuple[float, float]] = DEFAULT_VIEWS, size_px: int = 480) -> Path:
    """Write a PNG with one panel per view of the object (coloured by part label) and the hand.

    object_vertices: (V, 3) metres; object_faces: (F, 3); hand_verts: (H, 3) metres; hand_faces: (F_h, 3).
    """
    object_vertices = np.asarray(object_vertices, dtype=np.float64)
    object_faces = np.asarray(object_faces, dtype=np.int64)
    if object_vertices.ndim != 2 or object_vertices.shape[1] != 3 or len(object_vertices) == 0:
        raise ValueError(f"object_vertices must be (V, 3) with V > 0, got {object_vertices.shape}")
    if (hand_verts is None) != (hand_faces is None):
        raise ValueError("give hand_verts and hand_faces together, or neither")
    meshes = [(object_vertices, object_faces, _face_colours(object_faces, object_vertex_labels, "#c8c8c8"))]
    if hand_verts is not None:
        hand_verts = np.asarray(hand_verts, dtype=np.float64)
        hand_faces = np.asarray(hand_faces, dtype=np.int64)
        meshes.append((hand_verts, hand_faces, _face_colours(hand_faces, None, HAND_COLOUR)))
    every = np.concatenate([m[0] for m in meshes])
    centre, half = (every.max(0) + every.min(0)) / 2, (every.max(0) - every.min(0)).max() / 2 * 1.05

    dpi = 100
    figure = plt.figure(figsize=(size_px * len(views) / dpi, size_px / dpi), dpi=dpi)
    for i, (elevation, azimuth) in enumerate(views):
        axes = figure.add_subplot(1, len(views), i + 1, projection="3d")
        for vertices, faces, colours in meshes:
            collection = Poly3DCollection(vertices[faces], facecolors=shade(vertices, faces, colours),
                                          edgecolors="none")
            axes.add_collection3d(collection)
        for setter, c in zip((axes.set_xlim, axes.set_ylim, axes.set_zlim), centre, strict=True):
            setter(c - half, c + half)
        axes.set_box_aspect((1, 1, 1))
        axes.view_init(elev=elevation, azim=azimuth)
        axes.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=10)
    # Fixed margins, not tight_layout: that draws the whole figure once more to measure it, about a third of the
    # time per picture (review queues draw one per item, every cycle).
    figure.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=0.93 if title else 1.0, wspace=0.0)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out
