"""GRAB: write synthetic grasp sequences in its on-disk format, and stream their frames into RawSamples.

Layout (`root` is the folder holding GRAB's `grab/` and `tools/`; mesh paths inside the npz are relative to it,
as GRAB's own code joins them to `grab_path/..`):

    <root>/grab/s1..s10/<obj>_<action>[_<n>].npz                 one sequence (e.g. grab/s1/mug_drink_1.npz)
    <root>/tools/object_meshes/contact_meshes/<obj>.ply          object mesh, metres, object frame
    <root>/tools/subject_meshes/<gender>/<sN>_rhand.ply          the subject's personal right-hand template (778 v)

Each npz member is what GRAB's `np.savez` wrote: plain arrays for scalars and strings, and 0-d *object* arrays
(pickled dicts) for the nested parts. The members read here:

    obj_name, sbj_id, motion_intent, n_frames           strings / int
    rhand  = {"params": {"global_orient": (T, 3), "hand_pose": (T, 24) PCA coefficients, "transl": (T, 3),
                         "fullpose": (T, 45)}, "vtemp": "tools/subject_meshes/<gender>/<sN>_rhand.ply"}
    object = {"params": {"global_orient": (T, 3) axis-angle, "transl": (T, 3)},
              "object_mesh": "tools/object_meshes/contact_meshes/<obj>.ply"}

Safe loading (our choice): `np.load(allow_pickle=True)` would unpickle arbitrary objects. Instead the archive is
opened with zipfile, each needed member's .npy header is read with numpy.lib.format, plain arrays are read with
`allow_pickle=False`, and object arrays are unpickled with tasks.ingest.pickles.SafeUnpickler, which builds only numpy
arrays and builtin containers. Only the members above are read (a real npz also holds body, lhand, table and
per-vertex contact arrays, which can be large). The writer saves exactly like GRAB, so real and synthetic files
take the same path.

Frames (GRAB's tools/objectmodel.py): object vertices in the world are `v @ R(global_orient) + transl` (row
vectors), i.e. x_world = R^T x_object + transl. The right hand is MANO with the subject's vtemp as template
(betas unused, so 0), built as GRAB's code builds it (smplx MANO, use_pca=True, 24 components,
flat_hand_mean=True): fingers = hand_pose (24 PCA coefficients) @ hands_components[:24], no mean added, and
pose48 = global_orient ++ fingers. The stored fullpose (45 values, or 48 read as global ++ fingers) must agree with
that expansion within FULLPOSE_TOLERANCE_RAD, else the frame is a reject.
Canonical record per frame t: x' = R_t (x_world - transl_t) - c, with c the object mesh's volume centroid,
applied to the hand with rigid_transform_mano and J0 from the vtemp. hand_betas are zeros and `hand_template`
carries the vtemp for the later MANO step. GRAB has actions, not
affordances: the action goes to `intent` and affordance stays None. Split: md5(obj_name) % 10 (split_for).

Rejects: a problem with the whole file (unreadable archive, missing member or mis-shaped array, missing or
broken mesh or vtemp) gives one reject with source_index 0; a problem with one frame (NaN) rejects that frame.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import trimesh

from schemas.ids import hash_file, make_sample_id
from schemas.rows import Reject
from tasks.ingest.common import (
    MAX_FILE_BYTES,
    NUM_HAND_VERTS,
    GraspRecord,
    IngestError,
    RawSample,
    check_finite,
    content_hash,
    dataset_root,
    last_resort,
    reject_from,
    split_for,
    walk_files,
)
from tasks.ingest.mano_frame import (
    HandTemplate,
    matrix_to_rotvec,
    random_rotation,
    rigid_transform_mano,
    rotvec_to_matrix,
)
from tasks.ingest.meshes import CanonicalMesh, MeshCache, load_canonical_mesh
from tasks.ingest.object_classes import object_class
from tasks.ingest.pickles import safe_loads

DATASET = "grab"
MEMBERS = ("obj_name", "sbj_id", "motion_intent", "n_frames", "rhand", "object")
OBJECT_MESH_DIR = "tools/object_meshes/contact_meshes"
SUBJECT_MESH_DIR = "tools/subject_meshes"
NUM_PCA = 24  # GRAB's MANO: smplx MANO(use_pca=True, num_pca_comps=24, flat_hand_mean=True)
FULLPOSE_TOLERANCE_RAD = 1e-3  # largest |fullpose - expansion of hand_pose| accepted, per value


@dataclass(frozen=True)
class GrabSequence:
    """One sequence, checked at file level. Arrays are (T, k) float64, not yet checked for NaN (per frame)."""

    relative: str
    obj_name: str
    intent: str
    hand_orient: np.ndarray  # (T, 3)
    coefficients: np.ndarray  # (T, 24) hand_pose: PCA coefficients, what the hand is built from
    fullpose: np.ndarray  # (T, 45) their expansion as the file stores it, checked against ours
    hand_transl: np.ndarray  # (T, 3)
    obj_orient: np.ndarray  # (T, 3)
    obj_transl: np.ndarray  # (T, 3)
    mesh: CanonicalMesh
    vtemp: np.ndarray  # (778, 3)
    content_hash: str

    @property
    def num_frames(self) -> int:
        return len(self.hand_orient)


# -- safe npz ------------------------------------------------------------------------------------------------
def load_npz_safely(path: Path, where: str, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """The npz members named in `keys` (all when None): plain arrays as arrays, object arrays unpickled through
    SafeUnpickler (0-d ones unwrapped with .item()). IngestError for a truncated archive or a refused pickle."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name[:-4]: name for name in archive.namelist() if name.endswith(".npy")}
            wanted = names if keys is None else {k: names[k] for k in keys if k in names}
            return {key: _read_member(archive, name, where, key) for key, name in wanted.items()}
    except FileNotFoundError:
        raise IngestError(where, "npz", "file not found") from None
    except IsADirectoryError:
        raise IngestError(where, "npz", "is a directory, not a file") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise IngestError(where, "npz", f"truncated or not an npz archive ({type(exc).__name__}: {exc})") from None


def _read_member(archive: zipfile.ZipFile, name: str, where: str, key: str) -> Any:
    stored = archive.getinfo(name).file_size  # the member's uncompressed size, from the zip directory
    if stored > MAX_FILE_BYTES:
        raise IngestError(where, key, f"member {name} is {stored} bytes uncompressed, over the {MAX_FILE_BYTES}-byte "
                                      f"limit for one input")
    with archive.open(name) as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise IngestError(where, key, f".npy format version {version} not supported")
        if dtype.hasobject:
            # Read the (bounded) member into memory first: the unpickler then cannot ask the archive for more.
            array = safe_loads(handle.read(stored), where, key)
            return array.item() if isinstance(array, np.ndarray) and array.ndim == 0 else array
        # The header's shape must fit in the member's bytes before numpy allocates for it: a header claiming
        # (10**12, 3) in a 1 KB member would otherwise ask for terabytes.
        needed = math.prod(shape) * dtype.itemsize
        if needed > stored:
            raise IngestError(where, key, f"header claims shape {shape} of {dtype} ({needed} bytes) but member "
                                          f"{name} holds {stored} bytes")
    with archive.open(name) as handle:
        array = np.lib.format.read_array(handle, allow_pickle=False)
    return array.item() if array.ndim == 0 else array


# -- writer --------------------------------------------------------------------------------------------------
def write_grab(root: str | Path, records: Iterable[GraspRecord], rng: np.random.Generator, template: HandTemplate,
               *, gender: str = "male") -> list[Path]:
    """Write records as GRAB sequences: records sharing (subject, sequence) are the frames 0..T-1 of one file
    `grab/<subject>/<sequence>.npz` (defaults: subject "s1", sequence "<object_id>_<intent>_1"), with the object
    in a random world pose per frame. Each subject's vtemp is the template shaped by its records' betas (which
    must agree). Returns the npz files written."""
    root = Path(root)
    groups: dict[tuple[str, str], list[GraspRecord]] = {}
    for record in records:
        key = (record.subject or "s1", record.sequence or f"{record.object_id}_{record.intent or 'use'}_1")
        groups.setdefault(key, []).append(record)
    vtemps: dict[str, tuple[str, np.ndarray]] = {}
    written = []
    for (subject, sequence), frames in groups.items():
        _check_group(subject, sequence, frames)
        vtemp_rel, vtemp = _subject_template(root, subject, gender, frames[0], template, vtemps)
        mesh_rel = _write_object_mesh(root, frames[0])
        written.append(_write_sequence(root, subject, sequence, frames, vtemp_rel, vtemp, mesh_rel, template,
                                       gender, rng))
    return written


def _check_group(subject: str, sequence: str, frames: list[GraspRecord]) -> None:
    if [r.frame for r in frames] != list(range(len(frames))):
        raise ValueError(f"GRAB {subject}/{sequence}: frames must be 0..T-1 in order, got {[r.frame for r in frames]}")
    if len({r.object_id for r in frames}) != 1 or any(r.hand_pose is None for r in frames):
        raise ValueError(f"GRAB {subject}/{sequence}: one object per sequence and a MANO pose on every frame")


def _subject_template(root: Path, subject: str, gender: str, record: GraspRecord, template: HandTemplate,
                      done: dict[str, tuple[str, np.ndarray]]) -> tuple[str, np.ndarray]:
    """Write `<sN>_rhand.ply` once per subject: v_template + shapedirs @ betas (GRAB has no betas per frame)."""
    vtemp = template.v_template + template.shapedirs @ np.asarray(record.hand_betas, np.float64)
    if subject in done:
        if not np.allclose(done[subject][1], vtemp, atol=1e-12):
            raise ValueError(f"GRAB subject {subject}: records disagree on hand_betas (one vtemp per subject)")
        return done[subject]
    relative = f"{SUBJECT_MESH_DIR}/{gender}/{subject}_rhand.ply"
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    geometry = (trimesh.PointCloud(vtemp) if template.faces is None
                else trimesh.Trimesh(vtemp, template.faces, process=False))
    geometry.export(root / relative)
    done[subject] = (relative, vtemp)
    return done[subject]


def _write_object_mesh(root: Path, record: GraspRecord) -> str:
    relative = f"{OBJECT_MESH_DIR}/{record.object_id}.ply"
    if not (root / relative).exists():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        trimesh.Trimesh(record.object_vertices, record.object_faces, process=False).export(root / relative)
    return relative


def _write_sequence(root: Path, subject: str, sequence: str, frames: list[GraspRecord], vtemp_rel: str,
                    vtemp: np.ndarray, mesh_rel: str, template: HandTemplate, gender: str,
                    rng: np.random.Generator) -> Path:
    j0 = template.root_joint(np.zeros(10), v_template=vtemp)
    hand = {"global_orient": [], "transl": [], "fullpose": []}
    obj = {"global_orient": [], "transl": []}
    for record in frames:
        to_world, transl = random_rotation(rng), rng.uniform(-0.5, 0.5, size=3)
        pose, trans = rigid_transform_mano(record.hand_pose, record.hand_trans, j0, to_world, transl)
        hand["global_orient"].append(pose[:3])
        hand["fullpose"].append(pose[3:])
        hand["transl"].append(trans)
        obj["global_orient"].append(matrix_to_rotvec(to_world.T))  # GRAB: x_world = v @ R + t, so R = to_world^T
        obj["transl"].append(transl)
    # GRAB stores both: hand_pose, 24 PCA coefficients (what GRAB's own code builds the hand from), and fullpose,
    # their expansion. Coefficients are the projection on the first 24 components (orthonormal rows), so a pose
    # outside their span would be written as its projection: the records' fingers must lie in that span.
    basis = template.pca_basis(NUM_PCA)
    fingers = np.asarray(hand["fullpose"], np.float64)
    coefficients = fingers @ basis.T
    gap = float(np.abs(coefficients @ basis - fingers).max()) if len(fingers) else 0.0
    if gap > FULLPOSE_TOLERANCE_RAD:
        raise ValueError(f"GRAB {subject}/{sequence}: finger poses leave the span of MANO's first {NUM_PCA} "
                         f"PCA components by {gap:.2e} rad")
    hand["fullpose"] = list(coefficients @ basis)
    params = {k: np.asarray(v, np.float32) for k, v in hand.items()}
    params["hand_pose"] = coefficients.astype(np.float32)
    path = root / "grab" / subject / f"{sequence}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, gender=gender, sbj_id=subject, obj_name=frames[0].object_id,
             motion_intent=frames[0].intent or sequence.split("_")[1], framerate=120.0, n_frames=len(frames),
             n_comps=NUM_PCA, rhand={"params": params, "vtemp": vtemp_rel},
             object={"params": {k: np.asarray(v, np.float32) for k, v in obj.items()}, "object_mesh": mesh_rel})
    return path


# -- loader --------------------------------------------------------------------------------------------------
def grab_sources(root: str | Path) -> Iterator[Path]:
    """Every `grab/*/*.npz` sequence under `root`, in sorted order."""
    return walk_files(dataset_root(root) / "grab", ".npz")


def iter_grab(root: str | Path, template: HandTemplate, *, frame_step: int = 1, require_watertight: bool = True,
              cache_size: int = 16, paths: Iterable[Path] | None = None) -> Iterator[RawSample | Reject]:
    """Stream frames 0, frame_step, 2*frame_step, ... of every `grab/*/*.npz` under `root` (sorted) as
    RawSamples in the canonical frame, or Rejects naming the file and field. One sequence in memory at a time.
    `paths`: only these sequences (some of `grab_sources`)."""
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    root = dataset_root(root)
    meshes, vtemps = MeshCache(cache_size), MeshCache(cache_size)
    for path in grab_sources(root) if paths is None else paths:
        relative = path.relative_to(root).as_posix()
        try:
            sequence = load_sequence(root, relative, meshes, vtemps, require_watertight)
        except Exception as exc:  # one file never stops an ingest (last_resort)
            yield reject_from(last_resort(relative, exc), DATASET, source=relative)
            continue
        for frame in range(0, sequence.num_frames, frame_step):
            try:
                item = _frame_sample(sequence, frame, template)
            except Exception as exc:  # one file never stops an ingest (last_resort)
                item = reject_from(last_resort(relative, exc), DATASET, index=frame, source=relative)
            yield item


def load_sequence(root: Path, relative: str, meshes: MeshCache, vtemps: MeshCache,
                  require_watertight: bool = True) -> GrabSequence:
    """Read and check one sequence file (not its per-frame values) and the meshes it refers to."""
    data = load_npz_safely(root / relative, relative, MEMBERS)
    rhand, obj = _section(data, "rhand", relative), _section(data, "object", relative)
    hand_orient = _frames_array(rhand["params"], "rhand.params.global_orient", 3, relative)
    frames = len(hand_orient)
    coefficients = _frames_array(rhand["params"], "rhand.params.hand_pose", NUM_PCA, relative, frames)
    fullpose = _frames_array(rhand["params"], "rhand.params.fullpose", None, relative, frames)[:, -45:]
    mesh_rel = _inside_root(obj.get("object_mesh"), "object.object_mesh", relative)
    vtemp_rel = _inside_root(rhand.get("vtemp"), "rhand.vtemp", relative)
    mesh = meshes.get(mesh_rel, lambda: load_canonical_mesh(root, mesh_rel, require_watertight))
    vtemp = vtemps.get(vtemp_rel, lambda: _load_vtemp(root, vtemp_rel))
    name = str(data.get("obj_name") or Path(relative).stem.split("_")[0])
    return GrabSequence(
        relative=relative, obj_name=name, intent=_intent(data, relative),
        hand_orient=hand_orient, coefficients=coefficients, fullpose=fullpose,
        hand_transl=_frames_array(rhand["params"], "rhand.params.transl", 3, relative, frames),
        obj_orient=_frames_array(obj["params"], "object.params.global_orient", 3, relative, frames),
        obj_transl=_frames_array(obj["params"], "object.params.transl", 3, relative, frames),
        mesh=mesh, vtemp=vtemp.vertices,
        content_hash=content_hash(hash_file(root / relative), mesh.digest, vtemp.digest))


def _section(data: dict, key: str, relative: str) -> dict:
    section = data.get(key)
    if not isinstance(section, dict) or not isinstance(section.get("params"), dict):
        raise IngestError(relative, key, "missing, or not a dict with a 'params' dict")
    return section


def _frames_array(params: dict, name: str, width: int | None, relative: str, frames: int | None = None
                  ) -> np.ndarray:
    """(T, width) float64 array (width None: 45 or 48 columns, fullpose); shape only, NaN is checked per frame."""
    value = params.get(name.rsplit(".", 1)[-1])
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise IngestError(relative, name, "missing or not numeric") from None
    widths = (45, 48) if width is None else (width,)
    if array.ndim != 2 or array.shape[1] not in widths or (frames is not None and len(array) != frames):
        want = f"({frames if frames is not None else 'T'}, {' or '.join(map(str, widths))})"
        raise IngestError(relative, name, f"expected shape {want}, got {array.shape}")
    return array


def _inside_root(value: object, name: str, relative: str) -> str:
    """A mesh path from the npz, refused if it is absolute or climbs out of the dataset root."""
    if not isinstance(value, str) or not value:
        raise IngestError(relative, name, "missing mesh path")
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise IngestError(relative, name, f"mesh path {value!r} leaves the dataset root")
    return path.as_posix()


def _load_vtemp(root: Path, relative: str) -> CanonicalMesh:
    """The subject's (778, 3) template as a CanonicalMesh (vertices as read: not centred; faces unused)."""
    if not (root / relative).is_file():
        raise IngestError(relative, "rhand.vtemp", "subject template file not found")
    try:
        vertices = trimesh.load(root / relative, process=False).vertices
    except Exception as exc:  # trimesh raises many types for bad files
        raise IngestError(relative, "rhand.vtemp", f"cannot parse ({type(exc).__name__}: {exc})") from None
    vertices = check_finite("rhand.vtemp", vertices, (NUM_HAND_VERTS, 3), relative)
    return CanonicalMesh(vertices, np.zeros((0, 3), np.int64), None, np.zeros(3), hash_file(root / relative),
                         relative)


def _intent(data: dict, relative: str) -> str:
    intent = data.get("motion_intent")
    if isinstance(intent, str) and intent:
        return intent
    parts = Path(relative).stem.split("_")  # <obj>_<action>[_<n>]
    if len(parts) < 2:
        raise IngestError(relative, "motion_intent", "missing, and the file name is not <obj>_<action>_<n>")
    return parts[1]


def _frame_sample(sequence: GrabSequence, frame: int, template: HandTemplate) -> RawSample:
    where = sequence.relative
    try:
        fingers = _fingers(sequence, frame, template)
        pose = np.concatenate([check_finite("rhand.params.global_orient", sequence.hand_orient[frame], (3,), where),
                               fingers])
        trans = check_finite("rhand.params.transl", sequence.hand_transl[frame], (3,), where)
        obj_rot = rotvec_to_matrix(check_finite("object.params.global_orient", sequence.obj_orient[frame], (3,),
                                                where))
        obj_transl = check_finite("object.params.transl", sequence.obj_transl[frame], (3,), where)
    except IngestError as exc:
        raise IngestError(exc.path, exc.field, f"frame {frame}: {exc.reason}") from None
    j0 = template.root_joint(np.zeros(10), v_template=sequence.vtemp)
    # world -> object: x_obj = R (x_world - transl) (GRAB rotates row vectors by R), then recentre on c
    pose, trans = rigid_transform_mano(pose, trans, j0, obj_rot, -obj_rot @ obj_transl - sequence.mesh.centroid)
    return RawSample(
        sample_id=make_sample_id(DATASET, where, frame), dataset=DATASET, split=split_for(sequence.obj_name),
        source_path=where, source_index=frame, content_hash=sequence.content_hash, object_id=sequence.obj_name,
        object_category=object_class(sequence.obj_name), object_mesh_path=sequence.mesh.path,
        object_vertices=sequence.mesh.vertices, object_faces=sequence.mesh.faces, hand_pose=pose,
        hand_betas=np.zeros(10), hand_trans=trans, intent=sequence.intent, hand_template=sequence.vtemp)


def _fingers(sequence: GrabSequence, frame: int, template: HandTemplate) -> np.ndarray:
    """(45,) finger pose as GRAB's code builds it: hand_pose (24 PCA coefficients) @ the first 24 rows of MANO's
    hands_components, no mean added (flat_hand_mean=True). A fullpose that disagrees is a reject."""
    where = sequence.relative
    coefficients = check_finite("rhand.params.hand_pose", sequence.coefficients[frame], (NUM_PCA,), where)
    fingers = coefficients @ template.pca_basis(NUM_PCA)
    stored = check_finite("rhand.params.fullpose", sequence.fullpose[frame], (45,), where)
    gap = float(np.abs(stored - fingers).max())
    if gap > FULLPOSE_TOLERANCE_RAD:
        raise IngestError(where, "rhand.params.fullpose", f"disagrees with the expansion of hand_pose (24 PCA "
                                                           f"coefficients) by {gap:.4f} rad > "
                                                           f"{FULLPOSE_TOLERANCE_RAD} rad")
    return fingers
