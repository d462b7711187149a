"""OakInk-Shape: write synthetic grasps in its on-disk layout, and stream grasps (real or ours) into RawSamples.

Layout, as OakInk's toolkit (oikit, `oi_shape`) reads it; `root` is the folder oikit calls $OAKINK_DIR/shape:

    <root>/oakink_shape_v2/<cat>/<src_oid>/<grasp_id>/hand_param.pkl                grasp on a real object
    <root>/oakink_shape_v2/<cat>/<src_oid>/<grasp_id>/source.txt                    where the grasp came from
    <root>/oakink_shape_v2/<cat>/<src_oid>/<grasp_id>/<virtual_oid>/hand_param.pkl  the grasp moved to a virtual
                                                                                   object (same source.txt)
    <root>/metaV2/object_id.json, virtual_object_id.json                            {oid: {"name": <name>, ...}}
    <root>/OakInkObjectsV2/<name>/align/<mesh>.obj|.ply                             real object meshes
    <root>/OakInkVirtualObjectsV2/<name>/align/<mesh>.obj|.ply                      virtual object meshes

The object of a grasp is <virtual_oid> when present, else <src_oid>; its mesh is the one .obj/.ply in align/
(when there are several, the one whose file name contains "align", oikit's rule).

source.txt holds one line `<pass>/<src_oid>_<intent>_<subject>/<timestamp>`, e.g. `pass1/A01001_0003_0002/00012`;
the intent code is 0001 use, 0002 hold, 0003 liftup, 0004 handover (subject `0002_0005` for a handover pair, the
second hand's line ending in `_alt`, as oikit reads it).

hand_param.pkl is a pickle of {"pose", "shape", "tsl"} arrays. `pose` is (48,) axis-angle (what oikit feeds to
its MANO layer) or (16, 4) quaternions (w, x, y, z) as some documentation says; both are accepted. shape: (10,)
betas; tsl: (3,) metres. Frame and meaning of tsl, from oikit: the object mesh is moved so that its bounding-box
centre is at the origin, and the hand is posed by a MANO layer centred on the root joint (manotorch,
center_idx=0), then shifted by tsl: v = R_root (v_local - J0) + tsl. So tsl is where the root joint is, and
MANO's own translation is trans = tsl - J0 in the bbox-centred object frame.
Meshes are read as metres (OakInk's align meshes are; check a real one if in doubt).

Canonical record: object vertices minus the mesh's volume centroid c; the hand moved by x' = x + (b - c), with
b the bounding-box centre (rigid_transform_mano with R = I). Split: md5(object id) % 10 (split_for), OakInk's
own rule. The writer shifts each mesh file by a random offset so that origin, bbox centre and centroid differ.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from schemas.ids import hash_bytes, hash_file, make_sample_id
from schemas.rows import Reject
from tasks.ingest.common import (
    GraspRecord,
    IngestError,
    RawSample,
    Unchanged,
    check_finite,
    content_hash,
    dataset_root,
    last_resort,
    parse_json,
    read_bytes,
    reject_from,
    split_for,
    walk_files,
)
from tasks.ingest.mano_frame import (
    HandTemplate,
    matrix_to_quat_wxyz,
    matrix_to_rotvec,
    quat_wxyz_to_matrix,
    rigid_transform_mano,
    rotvec_to_matrix,
)
from tasks.ingest.meshes import CanonicalMesh, MeshCache, load_canonical_mesh
from tasks.ingest.obj_text import format_obj
from tasks.ingest.pickles import safe_loads

DATASET = "oakink"
SHAPE_DIR = "oakink_shape_v2"
INTENT_CODES = {"use": "0001", "hold": "0002", "liftup": "0003", "handover": "0004"}
INTENTS = {code: name for name, code in INTENT_CODES.items()}
# oikit's own pattern is unanchored; a handover's second hand has the same line with an `_alt` suffix.
_SOURCE = re.compile(r"^(?P<stage>[^/]+)/(?P<oid>.+?)_(?P<code>\d{4})_(?P<subject>[_0-9]+)/(?P<ts>[-0-9]+)(?:_alt)?$")
# oikit's categories (oakink/OakInk, oikit/oi_shape/utils.py ALL_CAT) and its path rules (oi_shape.py: object ids
# of 6 characters, grasp ids of 10): what oikit finds. The synthetic datasets use only these (tasks/synth); the
# writer writes what it is given and the loader reads any category and id.
OIKIT_CATEGORIES = (
    "apple", "banana", "binoculars", "bottle", "bowl", "cameras", "can", "cup", "cylinder_bottle", "donut",
    "eyeglasses", "flashlight", "fryingpan", "gamecontroller", "hammer", "headphones", "knife", "lightbulb",
    "lotion_pump", "mouse", "mug", "pen", "phone", "pincer", "power_drill", "scissors", "screwdriver", "squeezable",
    "stapler", "teapot", "toothbrush", "trigger_sprayer", "wineglass", "wrench",
)
OIKIT_ID_LENGTH = 6
_KINDS = {False: ("object_id.json", "OakInkObjectsV2"), True: ("virtual_object_id.json", "OakInkVirtualObjectsV2")}


@dataclass(frozen=True)
class _Placed:
    """Where the writer put an object's mesh: its name and the offset of the file's frame."""

    name: str
    offset: np.ndarray  # (3,) metres added to the record's vertices
    bbox_center: np.ndarray  # (3,) bounding-box centre of the mesh as written


# -- writer --------------------------------------------------------------------------------------------------
def write_oakink(root: str | Path, records: Iterable[GraspRecord], rng: np.random.Generator,
                 template: HandTemplate, *, virtual_fraction: float = 0.0, pose_format: str = "axis_angle",
                 mesh_format: str = "obj") -> list[Path]:
    """Write records (intent one of use/hold/liftup/handover; MANO pose, betas, trans) in OakInk-Shape's layout.
    A record goes to a virtual object with probability `virtual_fraction`. pose_format: "axis_angle" (48,) or
    "quaternion" (16, 4); mesh_format: "obj" or "ply". Records on one object_id share its mesh (written once).
    Returns the hand_param.pkl files written."""
    if pose_format not in ("axis_angle", "quaternion") or mesh_format not in ("obj", "ply"):
        raise ValueError(f"pose_format {pose_format!r} / mesh_format {mesh_format!r} not supported")
    root = Path(root)
    placed: dict[str, _Placed] = {}
    meta: dict[bool, dict] = {False: {}, True: {}}
    written = []
    for index, record in enumerate(records):
        virtual = bool(rng.uniform() < virtual_fraction)
        if record.object_id not in placed:
            placed[record.object_id] = _write_mesh(root, record, virtual, mesh_format, rng)
            meta[virtual][record.object_id] = {"name": placed[record.object_id].name}
        written.append(_write_grasp(root, record, index, virtual, placed[record.object_id], template, pose_format))
    for virtual, entries in meta.items():
        _merge_meta(root / "metaV2" / _KINDS[virtual][0], entries)
    return written


def _write_mesh(root: Path, record: GraspRecord, virtual: bool, mesh_format: str,
                rng: np.random.Generator) -> _Placed:
    name = f"{record.category}_{record.object_id}"
    offset = rng.uniform(-0.05, 0.05, size=3)
    vertices = np.asarray(record.object_vertices, np.float64) + offset
    folder = root / _KINDS[virtual][1] / name / "align"
    folder.mkdir(parents=True, exist_ok=True)
    if mesh_format == "obj":
        (folder / f"{name}.obj").write_text(format_obj(vertices, record.object_faces))
    else:
        trimesh.Trimesh(vertices, record.object_faces, process=False).export(folder / f"{name}.ply")
    return _Placed(name, offset, (vertices.min(axis=0) + vertices.max(axis=0)) / 2)


def _write_grasp(root: Path, record: GraspRecord, index: int, virtual: bool, placed: _Placed,
                 template: HandTemplate, pose_format: str) -> Path:
    if record.intent not in INTENT_CODES or record.hand_pose is None:
        raise ValueError(f"OakInk record {record.object_id}: needs a MANO pose and an intent in "
                         f"{sorted(INTENT_CODES)}, got intent {record.intent!r}")
    subject = record.subject or ("0001_0002" if record.intent == "handover" else "0001")
    if not re.fullmatch(r"[_0-9]+", subject):
        raise ValueError(f"OakInk record {record.object_id}: subject must be digits (and _), got {subject!r}")
    # A virtual object's grasp was made on a real source object: an id of its own, as long ("R" + the rest).
    src_oid = f"R{record.object_id[1:]}" if virtual else record.object_id
    grasp_id = hashlib.md5(f"{record.object_id}/{index}".encode()).hexdigest()[:10]
    grasp_dir = root / SHAPE_DIR / record.category / src_oid / grasp_id
    param_dir = grasp_dir / record.object_id if virtual else grasp_dir
    param_dir.mkdir(parents=True, exist_ok=True)
    code = INTENT_CODES[record.intent]
    (grasp_dir / "source.txt").write_text(f"pass1/{src_oid}_{code}_{subject}/{record.frame:05d}")
    betas = np.asarray(record.hand_betas, np.float64)
    tsl = np.asarray(record.hand_trans) + placed.offset - placed.bbox_center + template.root_joint(betas)
    pose = np.asarray(record.hand_pose, np.float64)
    if pose_format == "quaternion":
        pose = matrix_to_quat_wxyz(rotvec_to_matrix(pose.reshape(16, 3)))
    params = {"pose": pose.astype(np.float32), "shape": betas.astype(np.float32), "tsl": tsl.astype(np.float32)}
    path = param_dir / "hand_param.pkl"
    path.write_bytes(pickle.dumps(params, protocol=4))
    return path


def _merge_meta(path: Path, entries: dict) -> None:
    existing = json.loads(path.read_text()) if path.exists() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(existing | entries, indent=1, sort_keys=True))


# -- loader --------------------------------------------------------------------------------------------------
def oakink_sources(root: str | Path) -> Iterator[Path]:
    """Every hand_param.pkl under `<root>/oakink_shape_v2`, in sorted order: one grasp each."""
    return walk_files(dataset_root(root) / SHAPE_DIR, "hand_param.pkl")


def iter_oakink(root: str | Path, template: HandTemplate, *, require_watertight: bool = True,
                cache_size: int = 32, known: Mapping[str, str] | None = None,
                paths: Iterable[Path] | None = None) -> Iterator[RawSample | Reject | Unchanged]:
    """Stream every hand_param.pkl under `<root>/oakink_shape_v2`, in sorted order, as a RawSample in the
    canonical frame, or a Reject naming the file and field. `template` gives J0 (see the module docstring).
    `known`: {sample_id: content_hash} the table holds; a grasp whose files still hash to it is yielded as
    Unchanged, from its bytes alone (no unpickling, mesh loading or frame change: 3/4 of a grasp's time).
    `paths`: only these files (some of `oakink_sources`, e.g. one ingest chunk's)."""
    root = dataset_root(root)
    meta = {virtual: _read_meta(root, virtual) for virtual in (False, True)}
    cache = MeshCache(cache_size)
    digests: dict[tuple[bool, str], str] = {}  # (virtual, object id) -> sha256 of its mesh file
    for path in oakink_sources(root) if paths is None else paths:
        relative = path.relative_to(root).as_posix()
        try:
            same = _unchanged(root, relative, meta, known, digests) if known else None
            item = same or _load_grasp(root, relative, meta, cache, template, require_watertight)
        except Exception as exc:  # one file never stops an ingest (last_resort)
            item = reject_from(last_resort(relative, exc), DATASET, source=relative)
        yield item


def _unchanged(root: Path, relative: str, meta: dict, known: Mapping[str, str],
               digests: dict[tuple[bool, str], str]) -> Unchanged | None:
    """Unchanged when the grasp's content hash (its pickle, its source.txt, its mesh file: what _load_grasp
    hashes) is the one `known` holds for its id; None when it differs, is new, or cannot be read (then the full
    load decides, and names what is wrong)."""
    sample_id = make_sample_id(DATASET, relative, 0)
    if sample_id not in known:
        return None
    try:
        where = _grasp_path(relative)
        source_bytes = read_bytes(root / where.source_rel, where.source_rel, "source.txt", limit=SOURCE_MAX_BYTES)
        param_bytes = read_bytes(root / relative, relative, "hand_param")
        object_key = (where.virtual, where.object_id)
        if object_key not in digests:  # one folder listing and one hash per object, not per grasp
            mesh_rel = _mesh_path(root, meta[where.virtual], where.object_id, where.virtual, relative)
            digests[object_key] = hash_file(root / mesh_rel)
    except (IngestError, OSError):
        return None
    digest = _grasp_hash(param_bytes, source_bytes, digests[object_key])
    return Unchanged(sample_id) if digest == known[sample_id] else None


@dataclass(frozen=True)
class _GraspPath:
    """What a hand_param.pkl's path says: <cat>/<src_oid>/<grasp_id>[/<virtual_oid>] under SHAPE_DIR."""

    category: str
    src_oid: str
    object_id: str
    virtual: bool
    source_rel: str  # the grasp's source.txt, relative to the dataset root


def _grasp_path(relative: str) -> _GraspPath:
    parts = Path(relative).parts[1:-1]
    if len(parts) not in (3, 4):
        raise IngestError(relative, "path", f"expected {SHAPE_DIR}/<cat>/<src_oid>/<grasp_id>[/<virtual_oid>]"
                                            f"/hand_param.pkl")
    virtual = len(parts) == 4
    return _GraspPath(parts[0], parts[1], parts[3] if virtual else parts[1], virtual,
                      Path(SHAPE_DIR, *parts[:3], "source.txt").as_posix())


def _grasp_hash(param_bytes: bytes, source_bytes: bytes, mesh_digest: str) -> str:
    """A grasp's content hash: its pickle, its source.txt, its mesh file."""
    return content_hash(hash_bytes(param_bytes), hash_bytes(source_bytes), mesh_digest)


def _read_meta(root: Path, virtual: bool) -> dict | IngestError:
    """oid -> object name, or the error that each grasp on an object of this kind will carry."""
    relative = f"metaV2/{_KINDS[virtual][0]}"
    try:
        data = parse_json(read_bytes(root / relative, relative, "meta"), relative, "meta")
    except IngestError as exc:
        return exc
    return data if isinstance(data, dict) else IngestError(relative, "meta", "expected a JSON object")


def _load_grasp(root: Path, relative: str, meta: dict, cache: MeshCache, template: HandTemplate,
                require_watertight: bool) -> RawSample:
    where = _grasp_path(relative)
    category, src_oid, virtual, object_id = where.category, where.src_oid, where.virtual, where.object_id
    source_rel = where.source_rel
    source_bytes = read_bytes(root / source_rel, source_rel, "source.txt", limit=SOURCE_MAX_BYTES)
    intent = _intent(source_bytes, source_rel, src_oid)
    param_bytes = read_bytes(root / relative, relative, "hand_param")
    pose, betas, tsl = _hand_params(safe_loads(param_bytes, relative, "hand_param"), relative)
    mesh_rel = _mesh_path(root, meta[virtual], object_id, virtual, relative)
    mesh = cache.get(mesh_rel, lambda: load_canonical_mesh(root, mesh_rel, require_watertight))
    j0 = template.root_joint(betas)
    shift = _bbox_center(mesh) - mesh.centroid  # bbox-centred frame -> centroid frame
    pose, trans = rigid_transform_mano(pose, tsl - j0, j0, np.eye(3), shift)
    return RawSample(
        sample_id=make_sample_id(DATASET, relative, 0), dataset=DATASET, split=split_for(object_id),
        source_path=relative, source_index=0,
        content_hash=_grasp_hash(param_bytes, source_bytes, mesh.digest),
        object_id=object_id, object_category=category, object_mesh_path=mesh_rel, object_vertices=mesh.vertices,
        object_faces=mesh.faces, hand_pose=pose, hand_betas=betas, hand_trans=trans, intent=intent)


SOURCE_EXCERPT = 60  # characters of a bad source.txt's first line quoted in its reject
SOURCE_MAX_BYTES = 4096  # a source.txt is one line of about 30 characters


def _intent(source_bytes: bytes, source_rel: str, src_oid: str) -> str:
    text = source_bytes.decode("utf-8", errors="replace").strip()
    match = _SOURCE.match(text)
    if match is None:
        # Quote only the head of the first line: the file could be anything (a link to a system file).
        head = text.splitlines()[0] if text else ""
        cut = " (cut)" if len(head) > SOURCE_EXCERPT or len(head) < len(text) else ""
        raise IngestError(source_rel, "source.txt", f"expected one line <pass>/<oid>_<intent>_<subject>/<ts>, got "
                                                    f"{head[:SOURCE_EXCERPT]!r}{cut}")
    if match["oid"] != src_oid:
        raise IngestError(source_rel, "source.txt", f"object {match['oid']!r} is not the folder's {src_oid!r}")
    if match["code"] not in INTENTS:
        raise IngestError(source_rel, "source.txt", f"unknown intent code {match['code']!r}; expected one of "
                                                    f"{sorted(INTENTS)}")
    return INTENTS[match["code"]]


def _hand_params(params: object, relative: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(48,) axis-angle pose, (10,) betas, (3,) tsl from the unpickled dict."""
    if not isinstance(params, dict) or not {"pose", "shape", "tsl"} <= set(params):
        raise IngestError(relative, "hand_param", "expected a dict with keys pose, shape, tsl")
    betas = check_finite("shape", params["shape"], (10,), relative)
    tsl = check_finite("tsl", params["tsl"], (3,), relative)
    return _pose48(params["pose"], relative), betas, tsl


def _pose48(raw: object, relative: str) -> np.ndarray:
    """Accept (48,) / (16, 3) axis-angle or (16, 4) / (64,) unit quaternions (w first) -> (48,) axis-angle."""
    size = np.size(raw) if raw is not None else 0
    if size == 48:
        return check_finite("pose", np.reshape(raw, -1), (48,), relative)
    if size != 64:
        raise IngestError(relative, "pose", f"expected 48 axis-angle values or 16x4 quaternions, got shape "
                                            f"{np.shape(raw)}")
    quats = check_finite("pose", np.reshape(raw, (16, 4)), (16, 4), relative)
    norms = np.linalg.norm(quats, axis=1)
    if np.abs(norms - 1.0).max() > 1e-3:
        raise IngestError(relative, "pose", f"quaternion {int(np.abs(norms - 1).argmax())} has norm "
                                            f"{norms[np.abs(norms - 1).argmax()]:.4f}, expected 1")
    return matrix_to_rotvec(quat_wxyz_to_matrix(quats)).reshape(48)


def _mesh_path(root: Path, meta: dict | IngestError, object_id: str, virtual: bool, relative: str) -> str:
    if isinstance(meta, IngestError):
        raise meta
    entry = meta.get(object_id)
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise IngestError(relative, "object_id", f"object {object_id!r} is not in metaV2/{_KINDS[virtual][0]}")
    name = entry["name"]
    # The name is joined under the dataset root: an absolute name, or one climbing out with "..", would read a
    # mesh from elsewhere on the machine (and store its path). GRAB and HO-3D refuse the same.
    if not name or Path(name).is_absolute() or ".." in Path(name).parts or "\\" in name or "\0" in name:
        raise IngestError(f"metaV2/{_KINDS[virtual][0]}", f"{object_id}.name",
                          f"{name[:100]!r} is not a folder name inside the dataset root")
    folder = Path(_KINDS[virtual][1], name, "align")
    candidates = sorted(p for p in (root / folder).glob("*") if p.suffix in (".obj", ".ply"))
    if len(candidates) > 1:
        candidates = [p for p in candidates if "align" in p.name]
    if len(candidates) != 1:
        found = "no" if not candidates else "several"
        raise IngestError(folder.as_posix(), "mesh", f"{found} .obj/.ply mesh for object {object_id!r} in this "
                                                     f"folder; expected exactly one")
    return (folder / candidates[0].name).as_posix()


def _bbox_center(mesh: CanonicalMesh) -> np.ndarray:
    """(3,) bounding-box centre of the mesh in its file's frame."""
    return (mesh.vertices.min(axis=0) + mesh.vertices.max(axis=0)) / 2 + mesh.centroid
