"""What the four dataset ingesters share: records, errors, OBJ text, safe pickles, meshes, MANO frame changes.

Canonical frame (every loader's output): metres, object-centred. The origin is the volume centroid of the object
mesh as loaded (trimesh `center_mass`; the vertex mean when the mesh does not bound a volume), the axes are those
of the dataset's object mesh file (any object rotation in a grasp file is removed). The hand is expressed in
that frame.

Moving MANO parameters between frames. MANO poses vertices as v = R_root (v_local - J0) + J0 + trans, where J0
is the rest-pose root joint (it depends on the template and the betas). For a rigid change of frame x' = R x + t:
    R_root' = R R_root,    trans' = R (J0 + trans) + t - J0        (rigid_transform_mano)
The 45 finger values are rotations relative to their parent joints and do not change.

Content hash of a sample: sha256 over the sha256 hex digests of the grasp file and of every mesh file it uses,
in that order. It changes whenever any of those bytes change, and the mesh bytes are hashed once per mesh, not
re-read for every grasp.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from schemas.ids import hash_bytes, hash_file, make_sample_id
from schemas.rows import Reject

STAGE_VERSION = "ingest-1"
NUM_HAND_VERTS = 778
Split = Literal["train", "val", "test"]


# -- records -------------------------------------------------------------------------------------------------
@dataclass
class GraspRecord:
    """One grasp as a writer takes it, dataset-independent, everything in the object frame (metres).

    object_vertices: (V, 3) float; object_faces: (F, 3) int; object_vertex_labels: (V,) int8 AffordPose ids.
    hand_pose: (48,) MANO axis-angle (global + 45 finger, relative to the flat hand); hand_betas: (10,);
    hand_trans: (3,) metres; hand_verts: (778, 3) metres; hand_faces: (F, 3) int.
    subject / sequence / frame place the grasp in datasets made of recordings (GRAB, HO-3D, OakInk).
    """

    category: str
    object_id: str
    object_vertices: np.ndarray
    object_faces: np.ndarray
    object_vertex_labels: np.ndarray | None = None
    affordance: str | None = None
    intent: str | None = None
    hand_pose: np.ndarray | None = None
    hand_betas: np.ndarray | None = None
    hand_trans: np.ndarray | None = None
    hand_verts: np.ndarray | None = None
    hand_faces: np.ndarray | None = None
    subject: str | None = None
    sequence: str | None = None
    frame: int = 0


@dataclass
class RawSample:
    """One grasp as a loader yields it: the `Sample` fields the loader knows, in the canonical frame.

    The later pipeline adds object_points (surface samples) and, from the MANO parameters, hand vertices.
    hand_template: (778, 3) a per-subject MANO template that replaces v_template (GRAB's vtemp), else None.
    """

    sample_id: str
    dataset: str
    split: Split
    source_path: str
    source_index: int
    content_hash: str
    object_id: str
    object_category: str
    object_mesh_path: str | None = None
    object_vertices: np.ndarray | None = None
    object_faces: np.ndarray | None = None
    object_vertex_labels: np.ndarray | None = None
    hand_side: Literal["right", "left"] = "right"
    hand_pose: np.ndarray | None = None
    hand_betas: np.ndarray | None = None
    hand_trans: np.ndarray | None = None
    hand_verts: np.ndarray | None = None
    affordance: str | None = None
    intent: str | None = None
    stage_version: str = STAGE_VERSION
    hand_template: np.ndarray | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        """The `Sample` fields that are set (hand_template is not a Sample field and is left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "hand_template" and getattr(self, f.name) is not None}


# -- errors --------------------------------------------------------------------------------------------------
class IngestError(Exception):
    """A problem with one input file: `path` (relative to the dataset root), the `field` at fault, why."""

    def __init__(self, path: str | os.PathLike, field: str | None, reason: str) -> None:
        self.path = Path(path).as_posix()
        self.field = field
        self.reason = reason
        super().__init__(f"{self.path}: field {field}: {reason}" if field else f"{self.path}: {reason}")


def reject_from(error: IngestError, dataset: str, stage: str = "ingest", index: int = 0,
                source: str | None = None) -> Reject:
    """A `Reject` row for a sample that failed. `source` is the grasp file (defaults to the error's file), so
    the reject's sample_id is the id the sample would have had, even when a mesh file was to blame."""
    source = Path(source).as_posix() if source is not None else error.path
    return Reject(sample_id=make_sample_id(dataset, source, index), stage_version=STAGE_VERSION, stage=stage,
                  source=source, reason=str(error), field=error.field, dataset=dataset)


# Errors that only bad input data should raise below a loader's own checks. A loader turns them into a Reject
# naming the file rather than stop a run over one file; IngestError is the normal, precise path.
DATA_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OSError, EOFError)


def as_ingest_error(relative: str, exc: Exception) -> IngestError:
    """`exc` itself if it is an IngestError, else one for an error no check anticipated (field unknown)."""
    if isinstance(exc, IngestError):
        return exc
    return IngestError(relative, None, f"unexpected {type(exc).__name__}: {exc}")


def check_finite(name: str, array: Any, expected_shape: tuple[int | None, ...], where: str) -> np.ndarray:
    """`array` as float64 of `expected_shape` (None = any size on that axis); IngestError naming `name`."""
    if array is None:
        raise IngestError(where, name, "missing (None)")
    try:
        values = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise IngestError(where, name, f"not numeric: {exc}") from None
    if values.ndim != len(expected_shape) or any(
            want is not None and got != want for want, got in zip(expected_shape, values.shape, strict=False)):
        want = "x".join("N" if d is None else str(d) for d in expected_shape)
        raise IngestError(where, name, f"expected shape ({want}), got {values.shape}")
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values.reshape(-1)))[0])
        raise IngestError(where, name, f"non-finite value {values.reshape(-1)[bad]} at flat index {bad}")
    return values


def split_for(object_id: str) -> Split:
    """OakInk's split rule, by object: md5(object_id) % 10 -> 0..7 train, 8 val, 9 test (80/10/10)."""
    bucket = int(hashlib.md5(object_id.encode("utf-8")).hexdigest(), 16) % 10
    return "train" if bucket < 8 else ("val" if bucket == 8 else "test")


def content_hash(*digests: str) -> str:
    """sha256 over sha256 hex digests (grasp file first, then its mesh files)."""
    return hash_bytes(*(d.encode("ascii") for d in digests))


def dataset_root(root: str | os.PathLike) -> Path:
    """The dataset root as a Path; a missing root is the caller's mistake, not a bad sample: it raises."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset root not found (or not a directory)")
    return root


def walk_files(root: Path, suffix: str) -> Iterator[Path]:
    """Files under `root` ending in `suffix`, in sorted order (directories sorted as they are walked),
    yielded one at a time so a loader never lists a whole dataset's contents in memory at once."""
    for current, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(suffix):
                yield Path(current) / name


def read_bytes(path: Path, where: str, field: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise IngestError(where, field, "file not found") from None
    except OSError as exc:
        raise IngestError(where, field, f"cannot read: {exc}") from None


# -- rotations -----------------------------------------------------------------------------------------------
def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    return Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(*rotvec.shape[:-1], 3, 3)


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle with angle in [0, pi]."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return Rotation.from_matrix(matrix.reshape(-1, 3, 3)).as_rotvec().reshape(*matrix.shape[:-2], 3)


def quat_wxyz_to_matrix(quat: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions, scalar first (w, x, y, z) -> (..., 3, 3). Normalised first."""
    quat = np.asarray(quat, dtype=np.float64)
    rot = Rotation.from_quat(quat.reshape(-1, 4), scalar_first=True)
    return rot.as_matrix().reshape(*quat.shape[:-1], 3, 3)


def matrix_to_quat_wxyz(matrix: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 4) unit quaternions (w, x, y, z)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return Rotation.from_matrix(matrix.reshape(-1, 3, 3)).as_quat(scalar_first=True).reshape(*matrix.shape[:-2], 4)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """(3, 3) rotation drawn uniformly from SO(3)."""
    return Rotation.random(random_state=rng).as_matrix()


# -- MANO frame changes --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HandTemplate:
    """The MANO arrays needed to place the root joint: v_template (778, 3), shapedirs (778, 3, 10),
    J_regressor (16, 778) (dense, or scipy sparse as in the MANO pickle); faces (1538, 3) optional."""

    v_template: np.ndarray
    shapedirs: np.ndarray
    J_regressor: Any  # MANO pickle spelling, so a loaded MANO dict maps onto it field by field
    faces: np.ndarray | None = None

    @classmethod
    def from_mano(cls, params: Any) -> HandTemplate:
        """From anything carrying MANO's field names as keys or attributes (a MANO pickle dict, ManoParams)."""
        def get(name: str) -> Any:
            return params.get(name) if isinstance(params, dict) else getattr(params, name, None)
        return cls(get("v_template"), get("shapedirs"), get("J_regressor"), get("f"))

    def root_joint(self, betas: np.ndarray, v_template: np.ndarray | None = None) -> np.ndarray:
        """(3,) rest-pose root joint J0 for `betas`; `v_template` overrides the template (GRAB's vtemp)."""
        template = self.v_template if v_template is None else v_template
        return root_joint(template, self.shapedirs, self.J_regressor, betas)


def root_joint(v_template: np.ndarray, shapedirs: np.ndarray, j_regressor: Any, betas: np.ndarray) -> np.ndarray:
    """J0 = J_regressor[0] @ (v_template + shapedirs @ betas).
    v_template: (778, 3); shapedirs: (778, 3, 10); j_regressor: (16, 778); betas: (10,) -> (3,)."""
    first_row = j_regressor[0]
    first_row = np.asarray(first_row.toarray() if hasattr(first_row, "toarray") else first_row, np.float64)
    shaped = np.asarray(v_template, np.float64) + np.asarray(shapedirs, np.float64) @ np.asarray(betas, np.float64)
    return first_row.reshape(-1) @ shaped


def rigid_transform_mano(pose48: np.ndarray, trans: np.ndarray, j0: np.ndarray, rotation: np.ndarray,
                         translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MANO parameters after the change of frame x' = rotation @ x + translation.

    pose48: (48,) axis-angle; trans, j0, translation: (3,); rotation: (3, 3) -> (pose48', trans').
    """
    rotation = np.asarray(rotation, np.float64)
    j0 = np.asarray(j0, np.float64)
    new_pose = np.array(pose48, dtype=np.float64, copy=True)
    new_pose[:3] = matrix_to_rotvec(rotation @ rotvec_to_matrix(new_pose[:3]))  # R_root' = R R_root
    new_trans = rotation @ (j0 + np.asarray(trans, np.float64)) + np.asarray(translation, np.float64) - j0
    return new_pose, new_trans


# -- OBJ text ------------------------------------------------------------------------------------------------
def format_obj(vertices: np.ndarray, faces: np.ndarray | None, vertex_labels: np.ndarray | None = None) -> str:
    """OBJ text: `v x y z [label]` lines (label: integer 5th token) then 1-based `f a b c` lines.
    vertices: (V, 3); faces: (F, 3) 0-based or None; vertex_labels: (V,) int or None."""
    vertices = np.asarray(vertices, np.float64)
    if vertex_labels is None:
        lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in vertices]
    else:
        labels = np.asarray(vertex_labels).astype(np.int64)
        lines = [f"v {x:.9g} {y:.9g} {z:.9g} {k}" for (x, y, z), k in zip(vertices, labels, strict=True)]
    if faces is not None:
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, np.int64)]
    return "\n".join(lines) + "\n"


def parse_obj(text: str, where: str, require_faces: bool = True, field: str = "mesh"
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Parse OBJ text into vertices (V, 3) float64, faces (F, 3) int64 (polygons fan-triangulated) and
    labels (V,) int8 from an optional integer 5th token on `v` lines (all `v` lines or none carry one).
    Raises IngestError naming `where` (the file), `field` and the line number."""
    vertices: list[tuple[float, float, float]] = []
    labels: list[int] = []
    faces: list[tuple[int, int, int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens or tokens[0] not in ("v", "f"):
            continue  # comments, vt/vn/g/o/s/usemtl lines carry nothing we use
        if tokens[0] == "v":
            _parse_vertex(tokens, number, (where, field), vertices, labels)
        else:
            faces.extend(_parse_face(tokens, number, (where, field), len(vertices)))
    if not vertices or (require_faces and not faces):
        raise IngestError(where, field, f"empty mesh: {len(vertices)} vertices, {len(faces)} faces")
    label_array = np.asarray(labels, np.int8) if labels else None
    return np.asarray(vertices, np.float64), np.asarray(faces, np.int64).reshape(-1, 3), label_array


def _parse_vertex(tokens: list[str], number: int, at: tuple[str, str], vertices: list, labels: list) -> None:
    # 3 values: x y z; 4: x y z label (AffordPose); 6: x y z r g b (vertex colours, ignored)
    if len(tokens) not in (4, 5, 7):
        raise IngestError(*at, f"line {number}: `v` needs 3 coordinates, then an optional integer label or "
                                 f"an RGB colour, got {len(tokens) - 1} values")
    try:
        xyz = (float(tokens[1]), float(tokens[2]), float(tokens[3]))
    except ValueError:
        raise IngestError(*at, f"line {number}: non-numeric coordinate in {' '.join(tokens)!r}") from None
    if not all(np.isfinite(xyz)):
        raise IngestError(*at, f"line {number}: non-finite coordinate in {' '.join(tokens)!r}")
    if len(tokens) == 5:
        if len(labels) != len(vertices):
            raise IngestError(*at, f"line {number}: labelled vertex after unlabelled ones")
        try:
            labels.append(int(tokens[4]))
        except ValueError:
            raise IngestError(*at, f"line {number}: label {tokens[4]!r} is not an integer") from None
    elif labels:
        raise IngestError(*at, f"line {number}: vertex without a label after labelled ones")
    vertices.append(xyz)


def _parse_face(tokens: list[str], number: int, at: tuple[str, str], num_vertices: int) -> list[tuple[int, int, int]]:
    if len(tokens) < 4:
        raise IngestError(*at, f"line {number}: `f` needs at least 3 vertex indices, got {len(tokens) - 1}")
    try:
        raw = [int(token.split("/")[0]) for token in tokens[1:]]
    except ValueError:
        raise IngestError(*at, f"line {number}: non-integer index in {' '.join(tokens)!r}") from None
    # OBJ indices are 1-based; negative ones count back from the last vertex read so far.
    index = [i - 1 if i > 0 else num_vertices + i for i in raw]
    if any(i < 0 or i >= num_vertices for i in index) or 0 in raw:
        raise IngestError(*at, f"line {number}: face index out of range 1..{num_vertices} "
                                 f"in {' '.join(tokens)!r}")
    return [(index[0], index[k], index[k + 1]) for k in range(1, len(index) - 1)]


# -- safe pickles --------------------------------------------------------------------------------------------
_BUILTINS = frozenset({"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray",
                       "int", "float", "complex", "bool"})
# numpy's pickling entry points: arrays (protocols 0-4 and 5), scalars, dtypes. `_codecs.encode` rebuilds
# bytes in protocol-2 pickles (Python 2 files such as HO-3D's); it only encodes a string.
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that builds only numpy arrays, dtypes and scalars and builtin containers, numbers and strings.
    Any other global is refused before it is imported, so nothing in the pickle runs."""

    def __init__(self, file: io.BufferedIOBase, where: str, field: str = "pickle", encoding: str = "latin1"):
        super().__init__(file, encoding=encoding)
        self.where = where
        self.field = field

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _BUILTINS:
            return getattr(__import__("builtins"), name)
        if (module, name) not in _ALLOWED:
            raise IngestError(self.where, self.field, f"refused to unpickle {module}.{name}: only numpy arrays "
                                                      f"and builtin containers, numbers and strings are allowed")
        if module == "numpy":
            return getattr(np, name)
        if module == "_codecs":
            return importlib.import_module("_codecs").encode
        return _numpy_private(module.rsplit(".", 1)[-1], name)


def _numpy_private(submodule: str, name: str) -> Any:
    """numpy 2 keeps these in numpy._core, numpy 1 in numpy.core: take whichever this numpy has."""
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    raise AttributeError(f"numpy has no {submodule}.{name}")


def safe_unpickle(file: io.BufferedIOBase, where: str, field: str = "pickle") -> Any:
    """Load one pickle from an open binary file through SafeUnpickler; IngestError on anything wrong."""
    try:
        return SafeUnpickler(file, where, field).load()
    except IngestError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            UnicodeDecodeError, MemoryError) as exc:
        raise IngestError(where, field, f"truncated or corrupt pickle ({type(exc).__name__}: {exc})") from None


def safe_load_pickle(path: str | os.PathLike, where: str | None = None, field: str = "pickle") -> Any:
    """Load a pickle file that should hold only arrays, dicts, lists and strings (HO-3D meta, OakInk
    hand_param.pkl). Python-2 pickles load with encoding='latin1'. `where` names the file in errors."""
    where = where if where is not None else Path(path).as_posix()
    return safe_loads(read_bytes(Path(path), where, field), where, field)


def safe_loads(payload: bytes, where: str, field: str = "pickle") -> Any:
    return safe_unpickle(io.BytesIO(payload), where, field)


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
    if len(vertices) == 0 or len(faces) == 0:
        raise IngestError(where, field, f"empty mesh: {len(vertices)} vertices, {len(faces)} faces")
    if not np.isfinite(vertices).all():
        raise IngestError(where, field, "non-finite (NaN or inf) vertex coordinates")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise IngestError(where, field, f"face index outside 0..{len(vertices) - 1}")
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
