"""The generated hand's closed surface: digit tubes with rounded tips, a superelliptic palm stitched to them,
vertex ids of the fingertips placed where MANO has them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from models.mano_pickle import NUM_FACES, NUM_VERTS
from models.synthetic_hand_spec import (
    _CAP_RING,
    _COLUMNS_PER_FINGER,
    _FINGER_BASES,
    _FRAMES,
    _LEFT_MIDDLE_TIP,
    _PALM_FINGER_ORDER,
    _PALM_SECTIONS,
    _RING,
    _SPECS,
    _SUPERELLIPSE,
    _THUMB_HOLE_SECTIONS,
    DIGITS,
    TIP_VERTICES,
    _DigitSpec,
    _Frame,
)


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

