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
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from schemas.ids import hash_bytes, make_sample_id
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
    hand_trans: (3,) metres; hand_verts: (H, 3) metres (MANO: 778); hand_faces: (F, 3) int. A hand that is not
    MANO's (AffordPose's GraspIt! ManoHand) adds hand_dofs (16,) and its palm pose: palm_rotation (3, 3),
    palm_translation (3,) metres. hand_joints: (21, 3) metres, MANO's joints in manopth order (wrist, then thumb,
    index, middle, ring, pinky, base to tip), for formats that store joints (HO-3D's handJoints3D).
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
    hand_dofs: np.ndarray | None = None
    hand_joints: np.ndarray | None = None
    palm_rotation: np.ndarray | None = None
    palm_translation: np.ndarray | None = None
    subject: str | None = None
    sequence: str | None = None
    frame: int = 0


@dataclass(frozen=True)
class Unchanged:
    """A sample a loader found to have the content hash the table already holds, yielded without parsing or
    transforming it (see DatasetFormat.read_known): an incremental ingest only needs to know it is still there."""

    sample_id: str


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
    hand_faces: np.ndarray | None = None
    hand_model: str = "mano"
    hand_dofs: np.ndarray | None = None
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
    yielded one at a time so a loader never lists a whole dataset's contents in memory at once.
    A directory named like a data file is yielded too (and not descended into), so the loader's read names it
    as a reject rather than skipping it silently: the four loaders treat it alike."""
    for current, dirs, files in os.walk(root):
        dirs.sort()
        lookalikes = [name for name in dirs if name.endswith(suffix)]
        dirs[:] = [name for name in dirs if not name.endswith(suffix)]
        for name in sorted([*files, *lookalikes]):
            if name.endswith(suffix):
                yield Path(current) / name


# The largest input file a loader reads into memory. The largest files the datasets ship are GRAB sequences
# (tens of MB) and AffordPose JSON (a few MB); a file 40x bigger is not one of theirs, and reading it whole could
# exhaust a small machine's memory.
MAX_FILE_BYTES = 1 << 30


def read_bytes(path: Path, where: str, field: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes; IngestError naming `where` and `field` when it is missing, unreadable, not a regular
    file (a directory named like a data file) or over `limit` bytes (checked before reading)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise IngestError(where, field, f"{size} bytes, over the {limit}-byte limit for one input file")
            return handle.read(limit + 1)[:limit]
    except FileNotFoundError:
        raise IngestError(where, field, "file not found") from None
    except IsADirectoryError:
        raise IngestError(where, field, "is a directory, not a file") from None
    except OSError as exc:
        raise IngestError(where, field, f"cannot read: {exc}") from None


def parse_json(payload: bytes, where: str, field: str) -> Any:
    """JSON text -> value; IngestError naming `where` and `field` for bad UTF-8, bad JSON, or nesting deeper than
    the parser's recursion limit (a 2 KB file nested 1,000 deep: no dataset nests more than a few levels)."""
    try:
        return json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IngestError(where, field, f"truncated or invalid JSON ({exc})") from None
    except RecursionError:
        raise IngestError(where, field, "JSON nested too deeply to parse (the datasets nest a few levels)") from None


def last_resort(relative: str, exc: Exception) -> IngestError:
    """The reject for any exception one file raised: the per-file handler of every loader ends here, so no single
    file stops an ingest. Known kinds keep their message; anything else is named by its type."""
    if isinstance(exc, IngestError):
        return exc
    if isinstance(exc, MemoryError):
        return IngestError(relative, None, "MemoryError: the file asks for more memory than this machine has")
    return as_ingest_error(relative, exc)


