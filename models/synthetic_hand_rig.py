"""Rigging the generated hand as MANO is rigged: skinning weights, joint regressor, kinematic tree, pose
correctives, shape directions and the PCA synergies of the finger pose."""

from __future__ import annotations

import numpy as np

from models.synthetic_hand_mesh import _Mesh
from models.synthetic_hand_pose import curl_pose
from models.synthetic_hand_spec import _ROOT_PARENT, _SPECS, DIGITS, FLEXION_AXES, OPPOSITION_AXIS, PARENTS

_BLEND_HALF_WIDTH = (0.015, 0.010, 0.008)  # metres each side of a digit's base, 2nd and 3rd joint


_PALM_BLEND_RADIUS = 0.02  # palm vertices this close to a digit's base ring share some of that digit's motion


_POSE_BULGE = 0.0015  # metres: a joint ring moves out 2x this at 90 degrees of bend (see _pose_correctives)


_SHAPE_MAX_DISPLACEMENT = 0.004  # metres: the largest vertex move of one unit of any beta


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _digit_joints(part: int) -> tuple[int, int, int]:
    """MANO ids of the base, 2nd and 3rd joint of digit `part` (1..5)."""
    return 3 * part - 2, 3 * part - 1, 3 * part


def _skinning_weights(mesh: _Mesh) -> np.ndarray:
    """(778, 16) float64, rows summing to 1: a digit vertex follows the joint at its segment's proximal end,
    a palm vertex the wrist, blended smoothly across every joint so bending stretches the skin instead of
    tearing it."""
    weights = np.zeros((len(mesh.vertices), len(PARENTS)))
    palm = mesh.part == 0
    for part, name in enumerate(DIGITS, start=1):
        chain = (0, *_digit_joints(part))
        on = mesh.part == part
        joint_s = np.cumsum((0.0, *_SPECS[name].lengths[:2]))  # axial position of the three joints
        # past[k]: 0 -> 1 as a vertex passes joint k; the weight of a joint is how far it is past that joint
        # and not yet past the next one (telescoping, so each row sums to 1).
        past = [_smoothstep((mesh.axial[on] - s) / (2 * h) + 0.5) for s, h in zip(joint_s, _BLEND_HALF_WIDTH,
                                                                                   strict=True)]
        cumulative = np.stack([np.ones(on.sum()), *past, np.zeros(on.sum())])
        for k, joint in enumerate(chain):
            weights[on, joint] = cumulative[k] - cumulative[k + 1]
        base_ring = mesh.vertices[mesh.joint_rings[chain[1]]]
        distance = np.linalg.norm(mesh.vertices[palm, None] - base_ring[None], axis=2).min(axis=1)
        weights[palm, chain[1]] = 0.5 * (1.0 - _smoothstep(distance / _PALM_BLEND_RADIUS))  # 0.5 on the ring itself
    weights[palm, 0] = np.maximum(0.0, 1.0 - weights[palm].sum(axis=1))
    return weights / weights.sum(axis=1, keepdims=True)


def _joint_regressor(mesh: _Mesh) -> np.ndarray:
    """(16, 778): each joint is the mean of the ring of vertices around it."""
    regressor = np.zeros((len(PARENTS), len(mesh.vertices)))
    for joint, ring in enumerate(mesh.joint_rings):
        regressor[joint, ring] = 1.0 / len(ring)
    return regressor


def _kintree_table() -> np.ndarray:
    """(2, 16) int64: parents (the root's -1 stored as uint32, like the official files) over joint ids."""
    return np.array([[_ROOT_PARENT, *PARENTS[1:]], list(range(len(PARENTS)))], dtype=np.int64)


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals, the area-weighted mean of the adjacent faces' normals."""
    corners = vertices[faces]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # |n| = 2 * area
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return normals / np.linalg.norm(normals, axis=1, keepdims=True)


def _pose_correctives(mesh: _Mesh, weights: np.ndarray) -> np.ndarray:
    """(778, 3, 135) posedirs: a bent joint pushes the skin around it outward, against the volume that linear
    blend skinning loses there.

    MANO adds posedirs @ vec(R_j - I) for joints 1..15. Only the diagonal of R_j - I is used: its sum is
    trace(R_j - I) = -2 (1 - cos angle) whatever the axis, so the offset is
        2 * _POSE_BULGE * (1 - cos angle) * near_j(v) * normal(v),
    where near_j = 4 w_j w_parent is 1 on the joint's ring and fades to 0 where the blend across it ends.
    """
    normals = _vertex_normals(mesh.vertices, mesh.faces)
    posedirs = np.zeros((len(mesh.vertices), 3, 9 * (len(PARENTS) - 1)))
    for joint in range(1, len(PARENTS)):
        near = np.clip(4.0 * weights[:, joint] * weights[:, PARENTS[joint]], 0.0, 1.0)
        for diagonal in (0, 4, 8):  # (R - I)[0, 0], [1, 1], [2, 2] in the row-major 3x3 block
            posedirs[:, :, 9 * (joint - 1) + diagonal] = -_POSE_BULGE * near[:, None] * normals
    return posedirs


def _digit_coordinates(mesh: _Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per vertex, (V, 3) each: `along` (axial offset from the digit's base), `radial` (offset from the digit's
    axis) and `anchor` (the digit's base joint). Palm vertices: zero, zero and their own position."""
    along, radial, anchor = np.zeros_like(mesh.vertices), np.zeros_like(mesh.vertices), mesh.vertices.copy()
    for part, name in enumerate(DIGITS, start=1):
        on = mesh.part == part
        along[on] = mesh.axial[on, None] * mesh.frames[name].axis
        anchor[on] = mesh.bases[name]
        radial[on] = mesh.vertices[on] - anchor[on] - along[on]
    return along, radial, anchor


def _raw_shape_directions(mesh: _Mesh) -> list[np.ndarray]:
    """Ten named shape changes, (778, 3) each, before orthogonalisation (any scale)."""
    along, radial, anchor = _digit_coordinates(mesh)
    on = {name: (mesh.part == part)[:, None] for part, name in enumerate(DIGITS, start=1)}
    fingers = on["index"] | on["middle"] | on["ring"] | on["pinky"]
    axial = np.nan_to_num(mesh.axial)[:, None]
    distal_start = {name: sum(_SPECS[name].lengths[:2]) for name in DIGITS}
    distal = sum((on[name] * _smoothstep((axial - distal_start[name]) / _SPECS[name].lengths[2]) for name in DIGITS),
                 np.zeros_like(axial))
    palm = (mesh.part == 0)[:, None]
    return [
        mesh.vertices,  # overall size, about the wrist
        fingers * along,  # finger length
        anchor * [0.0, 0.0, 1.0],  # palm width: digits ride on their knuckles
        radial * _smoothstep(axial / 0.01) * ~palm,  # digit thickness, fading in over the first centimetre
        on["thumb"] * along,  # thumb length
        anchor * [1.0, 0.0, 0.0],  # palm length
        palm * mesh.vertices * [0.0, 1.0, 0.0],  # palm thickness
        (on["index"] * 1.0 - on["ring"]) * along,  # index longer than ring, or the other way
        on["pinky"] * along,  # pinky length
        radial * distal,  # fuller fingertips
    ]


def _orthonormal_rows(rows: np.ndarray, complete_to: int = 0) -> np.ndarray:
    """(k, n) -> orthonormal rows by Gram-Schmidt in order: row i spans what rows[i] adds to rows[:i].

    With `complete_to`, standard basis vectors (in order, skipping those already spanned) are appended until
    there are that many rows. Raises ValueError when `rows` are linearly dependent.
    """
    basis: list[np.ndarray] = []
    for vector in rows:
        residual = _residual(vector, basis)
        if np.linalg.norm(residual) < 1e-6 * np.linalg.norm(vector):
            raise ValueError(f"rows: expected linearly independent rows, row {len(basis)} is not")
        basis.append(residual / np.linalg.norm(residual))
    for vector in np.eye(rows.shape[1]):
        if len(basis) >= complete_to:
            break
        residual = _residual(vector, basis)
        if np.linalg.norm(residual) > 1e-6:
            basis.append(residual / np.linalg.norm(residual))
    return np.stack(basis)


def _residual(vector: np.ndarray, basis: list[np.ndarray]) -> np.ndarray:
    """`vector` minus its projection on the orthonormal `basis`, projected twice: a single pass leaves
    rounding errors that grow with the length of the basis."""
    residual = np.asarray(vector, dtype=np.float64)
    if basis:
        stacked = np.stack(basis)
        for _ in range(2):
            residual = residual - (stacked @ residual) @ stacked
    return residual


def _shape_directions(mesh: _Mesh) -> np.ndarray:
    """(778, 3, 10) shapedirs: orthogonal directions, each moving no vertex more than a few millimetres."""
    raw = np.stack([d.reshape(-1) for d in _raw_shape_directions(mesh)])
    directions = _orthonormal_rows(raw).reshape(len(raw), -1, 3)
    directions *= _SHAPE_MAX_DISPLACEMENT / np.linalg.norm(directions, axis=2).max(axis=1)[:, None, None]
    return np.moveaxis(directions, 0, 2)


def _synergies() -> np.ndarray:
    """(10, 45) coordinated finger motions, the most used first, like the leading components of grasp PCA."""
    fingers = {name: 1.0 for name in DIGITS[:4]}
    opposition = np.zeros((15, 3))
    opposition[12], opposition[13:] = OPPOSITION_AXIS, 0.4 * FLEXION_AXES[13:]
    spread = np.zeros((15, 3))
    for name, amount in (("index", -1.0), ("middle", -0.3), ("ring", 0.4), ("pinky", 1.0), ("thumb", -0.6)):
        spread[3 * DIGITS.index(name), 1] = amount  # about the palm normal at the base joint; + turns x to -z
    thumb_abduction = np.zeros((15, 3))
    thumb_abduction[12, 1] = -1.0
    return np.stack([
        curl_pose(fingers | {"thumb": (0.3, 0.5, 0.5)}),  # close the whole hand (power grasp)
        opposition.reshape(45),  # thumb across to the fingers (pinch)
        spread.reshape(45),  # fingers apart
        curl_pose({"index": 1.0}),  # index alone (point, press)
        curl_pose({"ring": 1.0, "pinky": 1.0, "index": -0.5}),  # ulnar fingers against the index
        curl_pose({"thumb": (0.0, 1.0, 1.0)}),  # thumb flexion
        curl_pose({"middle": 1.0}),
        curl_pose({"ring": 1.0}),  # (the pinky alone is already spanned: ulnar row - ring + index / 2)
        curl_pose({name: (-0.5, 1.0, 1.0) for name in fingers}),  # hook: PIP and DIP curl, MCP opens
        thumb_abduction.reshape(45),  # thumb away from the index in the palm plane
    ])


def _relaxed_pose() -> np.ndarray:
    """(45,) hands_mean: a resting hand, every finger slightly curled, the ulnar ones a little more."""
    return curl_pose({"index": (0.15, 0.25, 0.12), "middle": (0.17, 0.27, 0.13), "ring": (0.2, 0.3, 0.15),
                      "pinky": (0.25, 0.33, 0.17), "thumb": (0.1, 0.15, 0.1)}, thumb_opposition=0.2)

