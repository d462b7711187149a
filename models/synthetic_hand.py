"""A procedurally built hand saved in the MANO pickle format, standing in for the licensed MANO_RIGHT.pkl.

It has MANO's fields, shapes, joint order and fingertip vertex ids, so code written for the real MANO runs on it.

Template frame of the RIGHT hand (metres, right-handed axes):
    +x  from the wrist toward the fingertips; the wrist joint is at the origin
    +y  the palm normal: the palm faces +y, the back of the hand faces -y
    +z  the radial (thumb) side; the pinky is on the -z side
With +x forward and +y up, +z points to the right: the thumb is on the right of an upturned palm, as on a right
hand. The left hand is the mirror image across the x = 0 plane (its fingers point along -x).

Flexion: rotating non-root joint k (MANO order 1..15) by a positive angle about FLEXION_AXES[k - 1] curls that
joint toward the palm. For a finger the axis is finger_direction x (+y), close to +z; for the thumb it is
perpendicular to the thumb and to its pad, which faces the index finger and the palm. MANO's local joint frames
are the template's axes, so these vectors are also the axis-angle directions of the pose.

Mesh: a palm tube (rings of vertices from the wrist to the knuckles) whose last ring is the four finger base
rings joined by three web quads; a thumb tube leaves a hole on the palm's radial side; every digit is a tube of
10-vertex rings closed by a 5-vertex ring and an apex. One open loop of 16 edges is left at the wrist, so
faces = 2 * 778 - 2 - 16 = 1538, as in MANO. Vertex budget: palm sections 16 + 34 + 5 * 40 - 2 (the thumb
hole's middle) = 248; each finger 10 (knuckle ring) + 9 rings * 10 + 5 + 1 = 106; thumb 10 rings * 10 + 5 + 1
= 106 (its base ring belongs to the palm): 248 + 4 * 106 + 106 = 778.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from models.mano_pickle import MODEL_FILES, NUM_FACES, NUM_VERTS, ManoParams, save_mano_pickle

SIDES = ("right", "left")
DIGITS = ("index", "middle", "pinky", "ring", "thumb")  # MANO chain order: joints 1-3, 4-6, 7-9, 10-12, 13-15
TIP_VERTICES = {"thumb": 745, "index": 317, "middle": 444, "ring": 556, "pinky": 673}  # manopth's fingertips
_LEFT_MIDDLE_TIP = 445  # manopth reads the left middle fingertip here: a vertex of the middle finger's tip cap
PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
_ROOT_PARENT = 2**32 - 1  # the official files store the root's parent -1 as uint32

_RING = 10  # vertices around a digit
_CAP_RING = 5  # the smaller ring between a digit's last full ring and its apex
_COLUMNS_PER_FINGER = _RING // 2  # a finger base ring takes 5 palmar + 5 dorsal vertices of the palm's last ring
_SUPERELLIPSE = 2.4  # palm cross-sections: between an ellipse (2) and a rounded box (large)


@dataclass(frozen=True)
class _DigitSpec:
    """One digit, from its base joint (MCP; CMC for the thumb) to its tip. Lengths and radii in metres."""

    lengths: tuple[float, float, float]  # base -> 2nd joint -> 3rd joint -> tip
    radii: tuple[float, float, float, float]  # tube radius at the base, 2nd joint, 3rd joint, tip
    fractions: tuple[tuple[float, ...], ...]  # intermediate rings inside each segment, as fractions of its length
    direction: tuple[float, float, float]  # template direction, base -> tip
    pad: tuple[float, float, float]  # roughly where the pad faces; the digit flexes toward it


_FINGER_FRACTIONS = ((0.13, 0.5, 0.87), (0.22, 0.78), (0.3, 0.62))
_THUMB_FRACTIONS = ((0.2, 0.5, 0.8), (0.22, 0.78), (0.25, 0.5, 0.75))


def _splayed(degrees: float) -> tuple[float, float, float]:
    """A direction in the palm plane, `degrees` from +x toward the thumb side (+z)."""
    angle = np.radians(degrees)
    return float(np.cos(angle)), 0.0, float(np.sin(angle))


def _thumb_pad(direction: tuple[float, float, float], palmar_degrees: float) -> tuple[float, float, float]:
    """The thumb pad faces the fingers (the in-plane normal of the thumb, toward -z) tilted toward the palm."""
    toward_fingers = np.cross([0.0, 1.0, 0.0], direction)
    toward_fingers /= np.linalg.norm(toward_fingers)
    tilt = np.radians(palmar_degrees)
    return tuple(float(c) for c in np.cos(tilt) * toward_fingers + np.sin(tilt) * np.array([0.0, 1.0, 0.0]))


_THUMB_DIRECTION = tuple(float(c) for c in np.array([0.78, 0.24, 0.58]) / np.linalg.norm([0.78, 0.24, 0.58]))
_SPECS = {
    "index": _DigitSpec((0.039, 0.023, 0.020), (0.0095, 0.0088, 0.0079, 0.0071), _FINGER_FRACTIONS,
                        _splayed(5.0), (0.0, 1.0, 0.0)),
    "middle": _DigitSpec((0.042, 0.026, 0.021), (0.0097, 0.0091, 0.0081, 0.0073), _FINGER_FRACTIONS,
                         _splayed(1.0), (0.0, 1.0, 0.0)),
    "pinky": _DigitSpec((0.032, 0.020, 0.018), (0.0083, 0.0077, 0.0069, 0.0062), _FINGER_FRACTIONS,
                        _splayed(-9.0), (0.0, 1.0, 0.0)),
    "ring": _DigitSpec((0.040, 0.025, 0.020), (0.0092, 0.0086, 0.0077, 0.0069), _FINGER_FRACTIONS,
                       _splayed(-4.0), (0.0, 1.0, 0.0)),
    "thumb": _DigitSpec((0.045, 0.032, 0.028), (0.0125, 0.0105, 0.0095, 0.0086), _THUMB_FRACTIONS,
                        _THUMB_DIRECTION, _thumb_pad(_THUMB_DIRECTION, 35.0)),
}
# Knuckle (MCP) centre of each finger, (x, z); y = 0 is the palm's mid-plane. Radial to ulnar.
_FINGER_BASES = {"index": (0.086, 0.031), "middle": (0.088, 0.0105), "ring": (0.085, -0.0095),
                 "pinky": (0.078, -0.0285)}
_PALM_FINGER_ORDER = ("index", "middle", "ring", "pinky")  # column groups of the palm's last ring, radial first
# Palm cross-sections from the wrist (the open boundary) to just before the knuckles:
# (x, ulnar z, radial z, thickness, vertices, how far the columns already follow the finger bases).
_PALM_SECTIONS = (
    (0.000, -0.026, 0.026, 0.032, 16, 0.0),
    (0.011, -0.031, 0.030, 0.030, 34, 0.0),
    (0.023, -0.035, 0.034, 0.029, 40, 0.0),
    (0.035, -0.038, 0.036, 0.028, 40, 0.15),
    (0.047, -0.040, 0.038, 0.027, 40, 0.35),
    (0.059, -0.041, 0.040, 0.026, 40, 0.6),
    (0.071, -0.041, 0.041, 0.025, 40, 0.8),
)
_THUMB_HOLE_SECTIONS = (2, 3, 4)  # the thumb leaves the radial side of these three 40-vertex sections


@dataclass(frozen=True)
class _Frame:
    """A digit's template frame: `axis` base -> tip, `pad` toward the palm side, `side` = axis x pad.

    A positive rotation about `side` turns `axis` toward `pad`: that is the digit's flexion axis.
    """

    axis: np.ndarray
    pad: np.ndarray
    side: np.ndarray


def _frame(spec: _DigitSpec) -> _Frame:
    axis = np.asarray(spec.direction, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    pad = np.asarray(spec.pad, dtype=np.float64)
    pad = pad - pad @ axis * axis  # Gram-Schmidt: the pad direction must be perpendicular to the axis
    pad /= np.linalg.norm(pad)
    return _Frame(axis, pad, np.cross(axis, pad))


_FRAMES = {name: _frame(spec) for name, spec in _SPECS.items()}

FLEXION_AXES = np.stack([_FRAMES[name].side for name in DIGITS for _ in range(3)])
"""(15, 3) float64 unit axes, template frame: +angle about row k-1 curls MANO joint k toward the palm."""
FLEXION_AXES.setflags(write=False)

OPPOSITION_AXIS = np.array([-0.95, -0.31, 0.1]) / np.linalg.norm([-0.95, -0.31, 0.1])
"""(3,) unit axis of thumb opposition at the CMC joint: swings the thumb in front of the palm, toward the fingers."""
OPPOSITION_AXIS.setflags(write=False)


# ---- pose helpers ---------------------------------------------------------------------------------------------


def curl_pose(finger_curl: dict[str, float] | float, thumb_opposition: float = 0.0, side: str = "right") -> np.ndarray:
    """Axis-angle finger pose (45,) float64: MANO joints 1..15, three values each, template frame.

    finger_curl: radians of flexion at every joint, the same for all five digits (a float), or per digit
        ({'index': 0.8, 'thumb': (0.1, 0.3, 0.5)}: a float for each joint of that digit, or one per joint from
        base to tip); digits not named stay straight. 1.0 on every joint makes a fist.
    thumb_opposition: radians of rotation about OPPOSITION_AXIS at the thumb's CMC joint, applied after the
        thumb's own CMC flexion; about 1.0 with {'index': 0.7, 'thumb': 0.2} makes a tip pinch.
    side: 'left' returns the mirror image of the right-hand pose, for the left model.
    """
    if side not in SIDES:
        raise ValueError(f"side: expected one of {SIDES}, got {side!r}")
    if not np.isfinite(thumb_opposition):
        raise ValueError(f"thumb_opposition: expected a finite angle, got {thumb_opposition}")
    rotvecs = FLEXION_AXES * _curl_table(finger_curl).reshape(15, 1)
    if thumb_opposition:
        cmc = Rotation.from_rotvec(OPPOSITION_AXIS * thumb_opposition) * Rotation.from_rotvec(rotvecs[12])
        rotvecs[12] = cmc.as_rotvec()
    pose = rotvecs.reshape(45)
    return mirror_pose(pose) if side == "left" else pose


def _curl_table(finger_curl: dict[str, float] | float) -> np.ndarray:
    """(5, 3) radians per joint, rows in DIGITS order."""
    if isinstance(finger_curl, dict):
        unknown = sorted(set(finger_curl) - set(DIGITS))
        if unknown:
            raise ValueError(f"finger_curl: unknown digits {unknown}; expected names from {DIGITS}")
        table = np.zeros((5, 3))
        for name, value in finger_curl.items():
            table[DIGITS.index(name)] = _joint_angles(name, value)
    else:
        table = np.full((5, 3), _joint_angles("all", finger_curl))
    return table


def _joint_angles(name: str, value: object) -> np.ndarray:
    """(3,) radians for one digit's joints, base to tip, from one angle or three."""
    try:
        angles = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        angles = np.full(2, np.nan)  # reported below
    if angles.shape not in ((), (3,)) or not np.isfinite(angles).all():
        raise ValueError(f"finger_curl[{name!r}]: expected a finite angle or three, got {value!r}")
    return np.broadcast_to(angles, (3,))


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """Axis-angle pose (..., 3k) mirrored across the x = 0 plane: each (x, y, z) becomes (x, -y, -z).

    Rotations are pseudo-vectors: reflecting by M = diag(-1, 1, 1) maps an axis-angle w to det(M) M w.
    """
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-1] % 3:
        raise ValueError(f"pose: expected a last dimension divisible by 3, got shape {pose.shape}")
    return (pose.reshape(*pose.shape[:-1], -1, 3) * np.array([1.0, -1.0, -1.0])).reshape(pose.shape)


# ---- mesh building --------------------------------------------------------------------------------------------


@dataclass
class _Mesh:
    """The hand surface and what skinning needs to know about each vertex.

    vertices: (V, 3) float64, metres    faces: (F, 3) int64, outward (counter-clockwise seen from outside)
    part: (V,) int, 0 palm, c = 1..5 the digit whose MANO joints are 3c-2 .. 3c (DIGITS[c - 1])
    axial: (V,) float64, distance along the digit from its base joint ring (0 on it, NaN on the palm)
    joint_rings: 16 index arrays, the ring of vertices around each MANO joint
    tips: digit name -> apex vertex id       caps: digit name -> ids of the ring just below the apex
    frames / bases: digit name -> template frame and base joint position
    """

    vertices: np.ndarray
    faces: np.ndarray
    part: np.ndarray
    axial: np.ndarray
    joint_rings: list[np.ndarray]
    tips: dict[str, int]
    caps: dict[str, np.ndarray]
    frames: dict[str, _Frame]
    bases: dict[str, np.ndarray]


class _MeshBuilder:
    """Accumulates vertices (with their part and axial coordinate) and triangles."""

    def __init__(self) -> None:
        self.points: list[np.ndarray] = []
        self.part: list[int] = []
        self.axial: list[float] = []
        self.faces: list[tuple[int, int, int]] = []

    def add(self, points: np.ndarray, part: int = 0, axial: float = np.nan) -> np.ndarray:
        """Append (n, 3) points; returns their ids."""
        start = len(self.points)
        for point in np.atleast_2d(points):
            self.points.append(point)
            self.part.append(part)
            self.axial.append(axial)
        return np.arange(start, len(self.points))

    def quad_band(self, a: np.ndarray, b: np.ndarray) -> None:
        """Join two aligned rings of equal size (a before b along the axis, both counter-clockwise about it).

        A quad with a missing vertex (id -1) is left out: that is how the thumb hole is cut.
        """
        for j in range(len(a)):
            quad = a[j], a[(j + 1) % len(a)], b[(j + 1) % len(b)], b[j]
            if min(quad) >= 0:
                self.faces += [(quad[0], quad[1], quad[2]), (quad[0], quad[2], quad[3])]

    def zip_band(self, a: np.ndarray, b: np.ndarray, angle_a: np.ndarray, angle_b: np.ndarray) -> None:
        """Join two rings of any sizes, both counter-clockwise about the axis (angles in radians about it).

        Walks both rings from the pair nearest in angle, always advancing the ring whose next vertex comes
        first: len(a) + len(b) triangles.
        """
        rel_a = (angle_a - angle_a[0]) % (2 * np.pi)
        rel_b = (angle_b - angle_a[0] + np.pi) % (2 * np.pi) - np.pi  # in [-pi, pi): distance from a[0]
        start = int(np.argmin(np.abs(rel_b)))
        b, rel_b = np.roll(b, -start), np.roll(rel_b, -start)
        rel_b = rel_b[0] + (rel_b - rel_b[0]) % (2 * np.pi)  # increasing from b's first vertex
        next_a, next_b = np.append(rel_a, 2 * np.pi)[1:], np.append(rel_b, rel_b[0] + 2 * np.pi)[1:]
        i = j = 0
        n, m = len(a), len(b)
        while i < n or j < m:
            if j == m or (i < n and next_a[i] <= next_b[j]):
                self.faces.append((a[i], a[(i + 1) % n], b[j % m]))
                i += 1
            else:
                self.faces.append((a[i % n], b[(j + 1) % m], b[j]))
                j += 1

    def fan(self, ring: np.ndarray, apex: int) -> None:
        """Close a ring (counter-clockwise about the outward axis) with a cone to `apex`."""
        for j in range(len(ring)):
            self.faces.append((ring[j], ring[(j + 1) % len(ring)], apex))

    def vertices(self) -> np.ndarray:
        return np.array(self.points, dtype=np.float64)


def _ring_points(centre: np.ndarray, frame: _Frame, radius: float, count: int, flatten: float = 0.9) -> np.ndarray:
    """(count, 3) points of an ellipse around frame.axis, counter-clockwise about it.

    Angle phi is measured from the pad direction toward frame.side; the first point sits just past -side, so the
    first half of the ring is the pad (palmar) half. The ring is `flatten` times thinner along the pad direction
    than across it (fingers are wider than thick).
    """
    phi = -np.pi / 2 + (np.arange(count) + 0.5) * 2 * np.pi / count
    return (centre + flatten * radius * np.cos(phi)[:, None] * frame.pad
            + radius * np.sin(phi)[:, None] * frame.side)


def _angles_about(points: np.ndarray, centre: np.ndarray, frame: _Frame) -> np.ndarray:
    offset = points - centre
    return np.arctan2(offset @ frame.side, offset @ frame.pad)


def _digit_radius(spec: _DigitSpec, s: float) -> float:
    """Tube radius at distance s from the base: linear between joints, a hemisphere over the last tip radius."""
    ends = np.cumsum((0.0, *spec.lengths))
    tip_radius, total = spec.radii[3], ends[3]
    if s > total - tip_radius:
        return float(tip_radius * np.sqrt(max(0.0, 1.0 - ((s - total + tip_radius) / tip_radius) ** 2)))
    return float(np.interp(s, ends, spec.radii))


def _digit_stations(spec: _DigitSpec) -> tuple[list[float], list[int]]:
    """Axial positions of the full rings after the base ring, and which of them sit on the 2nd and 3rd joints."""
    stations: list[float] = []
    joint_positions: list[int] = []
    start = 0.0
    for segment, (length, fractions) in enumerate(zip(spec.lengths, spec.fractions, strict=True)):
        stations += [start + f * length for f in fractions]
        start += length
        if segment < 2:
            joint_positions.append(len(stations))
            stations.append(start)
    return stations, joint_positions


def _add_digit_tube(builder: _MeshBuilder, name: str, base: np.ndarray, base_ring: np.ndarray,
                    part: int) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Rings from the base ring to a capped tip; returns the rings on the 2nd and 3rd joints, the cap ring and
    the apex id."""
    spec, frame = _SPECS[name], _FRAMES[name]
    stations, joint_positions = _digit_stations(spec)
    previous = base_ring
    rings = []
    for s in stations:
        ring = builder.add(_ring_points(base + s * frame.axis, frame, _digit_radius(spec, s), _RING), part, s)
        if previous is base_ring:  # the thumb's base ring (its hole in the palm) is not a circle: zip by angle
            points = builder.vertices()
            builder.zip_band(previous, ring, _angles_about(points[previous], base, frame),
                             _angles_about(points[ring], base, frame))
        else:
            builder.quad_band(previous, ring)
        rings.append(ring)
        previous = ring
    cap, apex = _add_tip(builder, spec, frame, base, previous, part)
    return [rings[i] for i in joint_positions], cap, apex


def _add_tip(builder: _MeshBuilder, spec: _DigitSpec, frame: _Frame, base: np.ndarray, last_ring: np.ndarray,
             part: int) -> tuple[np.ndarray, int]:
    """Close the tube: a 5-vertex ring 55 degrees up the tip hemisphere, then the apex (the most distal vertex)."""
    total, tip_radius = sum(spec.lengths), spec.radii[3]
    s = total - tip_radius * (1.0 - np.sin(np.radians(55.0)))
    cap = builder.add(_ring_points(base + s * frame.axis, frame, _digit_radius(spec, s), _CAP_RING), part, s)
    points = builder.vertices()
    builder.zip_band(last_ring, cap, _angles_about(points[last_ring], base, frame),
                     _angles_about(points[cap], base, frame))
    apex = int(builder.add(base + total * frame.axis, part, total)[0])
    builder.fan(cap, apex)
    return cap, apex


def _finger_base_rings(builder: _MeshBuilder) -> dict[str, np.ndarray]:
    """The four knuckle rings; together (and in palm column order) they are the palm's last ring."""
    rings = {}
    for name in _PALM_FINGER_ORDER:
        x, z = _FINGER_BASES[name]
        centre = np.array([x, 0.0, z])
        part = DIGITS.index(name) + 1
        rings[name] = builder.add(_ring_points(centre, _FRAMES[name], _SPECS[name].radii[0], _RING), part, 0.0)
    return rings


def _knuckle_ring(base_rings: dict[str, np.ndarray]) -> np.ndarray:
    """The palm's last ring (40 ids) from the finger base rings, in palm order: palmar ulnar -> radial, then
    dorsal radial -> ulnar. A finger ring is [p4 .. p0, d0 .. d4] over its own 5 columns (column 0 radial)."""
    palmar = [base_rings[name][:_COLUMNS_PER_FINGER][::-1] for name in _PALM_FINGER_ORDER]  # p0 .. p4 each
    dorsal = [base_rings[name][_COLUMNS_PER_FINGER:] for name in _PALM_FINGER_ORDER]  # d0 .. d4 each
    return np.concatenate([np.concatenate(palmar)[::-1], np.concatenate(dorsal)])


def _palm_section(x: float, z_ulnar: float, z_radial: float, thickness: float, count: int,
                  knuckle_z: np.ndarray, follow: float) -> np.ndarray:
    """(count, 3) points of a rounded-box cross-section, in the palm ring order of `_knuckle_ring`.

    Columns are spread evenly across the width, then pulled by `follow` toward the knuckle ring's columns
    (`knuckle_z`, radial -> ulnar) so the last palm bands run straight into the fingers.
    """
    columns = count // 2
    z = z_radial - (np.arange(columns) + 0.5) * (z_radial - z_ulnar) / columns  # radial -> ulnar
    if follow:
        z = (1.0 - follow) * z + follow * knuckle_z
    mid, half = (z_radial + z_ulnar) / 2, (z_radial - z_ulnar) / 2
    across = np.clip(np.abs(z - mid) / half, 0.0, 1.0)
    half_height = thickness / 2 * (1.0 - across**_SUPERELLIPSE) ** (1.0 / _SUPERELLIPSE)
    palmar = np.stack([np.full(columns, x), half_height, z], axis=1)[::-1]
    dorsal = np.stack([np.full(columns, x), -half_height, z], axis=1)
    return np.concatenate([palmar, dorsal])


def _add_palm(builder: _MeshBuilder, knuckles: np.ndarray) -> list[np.ndarray]:
    """Palm sections from the wrist to the knuckle ring, stitched; returns the sections' id arrays.

    The middle vertices of the thumb hole (the two radial-most vertices of its middle section) are not created;
    their ids are -1 so `quad_band` leaves the six quads around them out.
    """
    points = builder.vertices()
    knuckle_z = points[knuckles[len(knuckles) // 2:], 2]  # dorsal half: radial -> ulnar
    sections = []
    for index, (x, z_ulnar, z_radial, thickness, count, follow) in enumerate(_PALM_SECTIONS):
        ring_points = _palm_section(x, z_ulnar, z_radial, thickness, count, knuckle_z, follow)
        if index == _THUMB_HOLE_SECTIONS[1]:
            ids = np.full(count, -1)
            keep = np.ones(count, dtype=bool)
            keep[[count // 2 - 1, count // 2]] = False  # p0 and d0: the radial-most palmar and dorsal vertices
            ids[keep] = builder.add(ring_points[keep])
        else:
            ids = builder.add(ring_points)
        sections.append(ids)
    _stitch_palm(builder, [*sections, knuckles])
    return sections


def _stitch_palm(builder: _MeshBuilder, rings: list[np.ndarray]) -> None:
    points = builder.vertices()
    frame = _Frame(np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    for a, b in itertools.pairwise(rings):
        if len(a) == len(b):
            builder.quad_band(a, b)
        else:  # the wrist sections have fewer vertices than the 40 of the palm
            centre_a, centre_b = points[a].mean(axis=0), points[b].mean(axis=0)
            builder.zip_band(a, b, _angles_about(points[a], centre_a, frame), _angles_about(points[b], centre_b, frame))
    knuckles = rings[-1]
    columns = len(knuckles) // 2
    for group in range(1, len(_PALM_FINGER_ORDER)):  # web quads between neighbouring fingers
        radial, ulnar = group * _COLUMNS_PER_FINGER - 1, group * _COLUMNS_PER_FINGER
        p_radial, p_ulnar = knuckles[columns - 1 - radial], knuckles[columns - 1 - ulnar]
        d_radial, d_ulnar = knuckles[columns + radial], knuckles[columns + ulnar]
        builder.faces += [(p_ulnar, p_radial, d_radial), (p_ulnar, d_radial, d_ulnar)]


def _thumb_hole(sections: list[np.ndarray]) -> np.ndarray:
    """The 10 ids around the thumb hole, counter-clockwise seen from outside (from +z): the thumb's base ring."""
    first, middle, last = (sections[i] for i in _THUMB_HOLE_SECTIONS)
    half = len(first) // 2
    p1, p0, d0, d1 = half - 2, half - 1, half, half + 1  # palm ring positions of the radial-most columns
    return np.array([first[d1], middle[d1], last[d1], last[d0], last[p0], last[p1], middle[p1], first[p1],
                     first[p0], first[d0]])


def _build_mesh() -> _Mesh:
    """The right hand in build order (the fingertip ids are fixed afterwards by `_with_tip_ids`)."""
    builder = _MeshBuilder()
    base_rings = _finger_base_rings(builder)
    sections = _add_palm(builder, _knuckle_ring(base_rings))
    base_rings["thumb"] = _thumb_hole(sections)
    thumb_part = DIGITS.index("thumb") + 1
    for vertex in base_rings["thumb"]:
        builder.part[vertex], builder.axial[vertex] = thumb_part, 0.0
    bases = {name: builder.vertices()[ring].mean(axis=0) for name, ring in base_rings.items()}
    joint_rings: list[np.ndarray] = [sections[0]]
    tips, caps = {}, {}
    for part, name in enumerate(DIGITS, start=1):
        inner_rings, caps[name], tips[name] = _add_digit_tube(builder, name, bases[name], base_rings[name], part)
        joint_rings += [base_rings[name], *inner_rings]
    return _Mesh(builder.vertices(), np.array(builder.faces, dtype=np.int64), np.array(builder.part),
                 np.array(builder.axial), joint_rings, tips, caps, dict(_FRAMES), bases)


def _with_tip_ids(mesh: _Mesh) -> _Mesh:
    """Renumber the vertices so that each digit's apex gets MANO's fingertip id (TIP_VERTICES), and a vertex
    of the middle finger's cap ring gets the id manopth reads as the left hand's middle fingertip."""
    count = len(mesh.vertices)
    if count != NUM_VERTS or len(mesh.faces) != NUM_FACES:
        raise AssertionError(f"synthetic hand has {count} vertices and {len(mesh.faces)} faces; MANO has "
                             f"{NUM_VERTS} and {NUM_FACES}")
    fixed = {new_id: mesh.tips[name] for name, new_id in TIP_VERTICES.items()}
    fixed[_LEFT_MIDDLE_TIP] = int(mesh.caps["middle"][0])
    order = np.full(count, -1)  # new id -> old id
    order[list(fixed)] = list(fixed.values())
    order[order < 0] = np.setdiff1d(np.arange(count), list(fixed.values()))  # the rest keep their build order
    new_id_of = np.empty(count, dtype=np.int64)
    new_id_of[order] = np.arange(count)
    return _Mesh(mesh.vertices[order], new_id_of[mesh.faces], mesh.part[order], mesh.axial[order],
                 [new_id_of[ring] for ring in mesh.joint_rings], dict(TIP_VERTICES),
                 {name: new_id_of[cap] for name, cap in mesh.caps.items()}, mesh.frames, mesh.bases)


# ---- skinning, joint regressor, blend shapes ------------------------------------------------------------------

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


# ---- the model ------------------------------------------------------------------------------------------------


def build_synthetic_hand(side: str = "right") -> ManoParams:
    """The generated hand as MANO parameters (deterministic): template in metres, frame in the module doc."""
    if side not in SIDES:
        raise ValueError(f"side: expected one of {SIDES}, got {side!r}")
    mesh = _with_tip_ids(_build_mesh())
    weights = _skinning_weights(mesh)
    right = ManoParams(v_template=mesh.vertices, f=mesh.faces, J_regressor=_joint_regressor(mesh), weights=weights,
                       kintree_table=_kintree_table(), shapedirs=_shape_directions(mesh),
                       posedirs=_pose_correctives(mesh, weights),
                       hands_components=_orthonormal_rows(_synergies(), complete_to=45), hands_mean=_relaxed_pose())
    return right if side == "right" else mirror_hand(right)


def mirror_hand(params: ManoParams) -> ManoParams:
    """The mirror image of a hand model across the x = 0 plane (right <-> left).

    Positions and shape directions negate x; faces reverse their winding so normals still point outward;
    axis-angle poses map (x, y, z) -> (x, -y, -z). A pose feature (R - I)[r, c] of the mirrored hand equals
    m_r m_c (R - I)[r, c] of this one (R' = M R M, M = diag(-1, 1, 1)), so posedirs columns whose entry mixes
    x with y or z change sign as well.
    """
    flip = np.array([-1.0, 1.0, 1.0])
    feature_sign = np.tile(np.outer(flip, flip).reshape(9), len(PARENTS) - 1)
    return ManoParams(v_template=params.v_template * flip, f=params.f[:, ::-1], J_regressor=params.J_regressor,
                      weights=params.weights, kintree_table=params.kintree_table,
                      shapedirs=params.shapedirs * flip[None, :, None],
                      posedirs=params.posedirs * flip[None, :, None] * feature_sign[None, None, :],
                      hands_components=mirror_pose(params.hands_components), hands_mean=mirror_pose(params.hands_mean))


def write_synthetic_mano(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write MANO_RIGHT.pkl and MANO_LEFT.pkl (its mirror image) into `folder`, creating it if needed.

    Returns {'right': path, 'left': path}. Each file is replaced atomically (see `save_mano_pickle`).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    right = build_synthetic_hand("right")
    paths = {}
    for side, params in (("right", right), ("left", mirror_hand(right))):
        paths[side] = folder / MODEL_FILES[side]
        save_mano_pickle(paths[side], params)
    return paths
