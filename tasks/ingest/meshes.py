"""Object meshes as loaders read them: load (.obj/.ply), check, move to the canonical frame, cache per file."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from ops.mesh_check import check_mesh as check_arrays
from schemas.ids import hash_file
from tasks.ingest.common import IngestError, read_bytes
from tasks.ingest.obj_text import parse_obj


# -- meshes --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CanonicalMesh:
    """An object mesh moved to its canonical frame. vertices: (V, 3) metres, centroid at the origin;
    faces: (F, 3) int64; labels: (V,) int8 or None; centroid: (3,) where the origin was in the file's frame;
    digest: sha256 of the file (or text) it came from; path: relative path (None when embedded)."""

    vertices: np.ndarray
    faces: np.ndarray
    labels: np.ndarray | None
    centroid: np.ndarray
    digest: str
    path: str | None


def load_mesh(path: str | os.PathLike, where: str | None = None, require_watertight: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64 and faces (F, 3) int64 of an .obj (parse_obj) or .ply (trimesh, process=False)
    file, in file order. IngestError for a missing file, an unreadable, empty or non-finite mesh (OBJ errors
    name the line), or (if asked) a non-watertight one."""
    path = Path(path)
    where = where if where is not None else path.as_posix()
    if not path.is_file():
        raise IngestError(where, "mesh", "mesh file not found")
    if path.suffix.lower() == ".obj":
        # Our parser, not trimesh's: trimesh reads a `v` line with a missing token silently (shifting every
        # later coordinate); parse_obj names the line instead.
        text = read_bytes(path, where, "mesh").decode("utf-8", errors="replace")
        vertices, faces, _ = parse_obj(text, where)
    else:
        vertices, faces = _trimesh_arrays(path, where)
    check_mesh(vertices, faces, where, require_watertight)
    return vertices, faces


def _trimesh_arrays(path: Path, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        mesh = trimesh.load(path, process=False, force="mesh")
    except Exception as exc:  # trimesh raises many types for bad files; all mean "cannot parse"
        raise IngestError(where, "mesh", f"cannot parse mesh ({type(exc).__name__}: {exc})") from None
    vertices = np.asarray(getattr(mesh, "vertices", np.zeros((0, 3))), np.float64).reshape(-1, 3)
    faces = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), np.int64).reshape(-1, 3)
    return vertices, faces


def check_mesh(vertices: np.ndarray, faces: np.ndarray, where: str, require_watertight: bool,
               field: str = "mesh") -> trimesh.Trimesh:
    """Reject empty, non-finite, out-of-range or (if asked) open meshes; returns a vertex-merged copy.
    Merging is by position only: textured OBJ files split vertices along UV seams, which would otherwise
    read as holes."""
    try:  # the shared check; reshaped so an empty parse reads as "empty", not as a shape error
        vertices, faces = check_arrays(field, np.reshape(vertices, (-1, 3)), np.reshape(faces, (-1, 3)))
    except ValueError as exc:
        raise IngestError(where, field, str(exc)) from None
    merged = trimesh.Trimesh(vertices, faces, process=False)
    # Closed as stored, or closed once seam-split vertices are merged. Either counts: merging fixes UV seams
    # but fuses separate shells that touch (a laptop's lid and base), which makes the stored mesh the closed one.
    closed_as_stored = require_watertight and merged.is_watertight
    merged.merge_vertices()
    if require_watertight and not (closed_as_stored or merged.is_watertight):
        raise IngestError(where, field, "mesh is not watertight (open boundary or non-manifold edges)")
    return merged


def mesh_centroid(merged: trimesh.Trimesh, vertices: np.ndarray) -> np.ndarray:
    """(3,) trimesh center_mass when the mesh bounds a volume, else the mean of `vertices`."""
    return np.asarray(merged.center_mass if merged.is_volume else vertices.mean(axis=0), np.float64)


def canonical_mesh(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray | None, where: str,
                   require_watertight: bool, digest: str, path: str | None, field: str = "mesh") -> CanonicalMesh:
    """Check a mesh in metres and move its centroid to the origin."""
    merged = check_mesh(vertices, faces, where, require_watertight, field)
    centroid = mesh_centroid(merged, vertices)
    arrays = [vertices - centroid, np.asarray(faces, np.int64)] + ([] if labels is None else [labels])
    for array in arrays:  # shared by every sample on this object: nobody may edit them in place
        array.flags.writeable = False
    return CanonicalMesh(arrays[0], arrays[1], labels, centroid, digest, path)


def load_canonical_mesh(root: Path, relative: str, require_watertight: bool = True,
                        scale: float = 1.0) -> CanonicalMesh:
    """Load `root/relative` (.obj/.ply), scale to metres, and centre it (see canonical_mesh)."""
    vertices, faces = load_mesh(root / relative, relative, require_watertight)
    return canonical_mesh(vertices * scale, faces, None, relative, require_watertight,
                          hash_file(root / relative), relative)


class MeshCache:
    """Least-recently-used cache of CanonicalMesh (and of the IngestError a broken mesh raised), so a loader
    loads each object mesh once per run of grasps on it without holding every mesh of a dataset."""

    def __init__(self, maxsize: int = 32) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.loads = 0
        self._items: OrderedDict[str, CanonicalMesh | IngestError] = OrderedDict()

    def get(self, key: str, load: Callable[[], CanonicalMesh]) -> CanonicalMesh:
        if key in self._items:
            self._items.move_to_end(key)
            item = self._items[key]
        else:
            self.loads += 1
            try:
                item = load()
            except IngestError as exc:
                item = exc
            self._items[key] = item
            if len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        if isinstance(item, IngestError):
            raise IngestError(item.path, item.field, item.reason)
        return item

    def __len__(self) -> int:
        return len(self._items)

