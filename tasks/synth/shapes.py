"""Closed, outward-oriented triangle shells the synthetic objects are built from: lathed profiles, cylinders,
boxes, prisms, tubes along paths, loop handles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from schemas.affordance import AFFORDPOSE_LABEL_IDS

X, Y, Z = np.eye(3)
LABEL_IDS: dict[str, int] = {name: label for label, name in AFFORDPOSE_LABEL_IDS.items()}


@dataclass
class ObjectPart:
    """One part of a synthetic object and the affordance it carries; vectors in the object frame, metres.

    centre: (3,) float64 — where a hand would hold the part: on its main axis (a handle's centreline at its
        outermost point, a body's axis at mid-height, a key's centre).
    axis: (3,) float64 unit — the part's main axis (a handle's long direction, a cylinder's axis, an edge's
        direction for flat parts); perpendicular to `approach`.
    approach: (3,) float64 unit — outward direction from which a hand approaches; the part's surface lies
        about `radius` from `centre` along it, and nothing of the object lies just beyond.
    radius: distance from `centre` to the surface along `approach` (tube or cylinder radius, half-thickness
        of flat parts).
    length: extent of the part along `axis`.
    """

    name: str
    affordance: str
    label_id: int
    centre: np.ndarray
    axis: np.ndarray
    approach: np.ndarray
    radius: float
    length: float



class _Shell(NamedTuple):
    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int64


class _Piece(NamedTuple):
    part: ObjectPart
    shells: list[_Shell]


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, np.float64) / np.linalg.norm(v)


def _signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->", a, np.cross(b, c)) / 6.0)  # V = sum a . (b x c) / 6


def _oriented(vertices: np.ndarray, faces: np.ndarray) -> _Shell:
    """The shell with outward normals: a consistently wound shell with negative volume is inside out."""
    if _signed_volume(vertices, faces) < 0:
        faces = faces[:, ::-1]
    return _Shell(vertices, np.ascontiguousarray(faces, np.int64))


def _ring_shell(rings: np.ndarray, caps: tuple[np.ndarray, np.ndarray] | None) -> _Shell:
    """Closed shell through K rings of S points each, rings: (K, S, 3).

    caps=(start, end): two cap centres closing the ends with triangle fans (an open tube, a lathe's poles);
    caps=None: the last ring joins the first (a torus).
    """
    k_rings, s = rings.shape[:2]
    ring = np.arange(s)
    k = np.arange(k_rings if caps is None else k_rings - 1)[:, None]
    a, b = k * s + ring, k * s + (ring + 1) % s
    d, c = (k + 1) % k_rings * s + ring, (k + 1) % k_rings * s + (ring + 1) % s
    faces = [np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)]
    vertices = [rings.reshape(-1, 3)]
    if caps is not None:
        start, end, last = k_rings * s, k_rings * s + 1, (k_rings - 1) * s
        # Each cap triangle runs its ring edge opposite to the side triangle that shares it.
        faces += [np.stack([np.full(s, start), (ring + 1) % s, ring], -1),
                  np.stack([np.full(s, end), last + ring, last + (ring + 1) % s], -1)]
        vertices += [np.asarray(caps[0], np.float64)[None], np.asarray(caps[1], np.float64)[None]]
    return _oriented(np.concatenate(vertices), np.concatenate(faces))


def _circle(segments: int) -> np.ndarray:
    """(S, 2) unit circle, counter-clockwise."""
    theta = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    return np.stack([np.cos(theta), np.sin(theta)], -1)


def _lathe(profile: Sequence[tuple[float, float]], segments: int = 32) -> _Shell:
    """Surface of revolution about z; profile: (K, 2) (r, z) from one pole (r = 0) to the other."""
    prof = np.asarray(profile, np.float64)
    if prof[0, 0] != 0 or prof[-1, 0] != 0:
        raise ValueError(f"profile must start and end on the axis (r = 0), got {prof[[0, -1]].tolist()}")
    circle = _circle(segments)
    rings = np.stack([np.column_stack([r * circle, np.full(segments, z)]) for r, z in prof[1:-1]])
    return _ring_shell(rings, ((0, 0, prof[0, 1]), (0, 0, prof[-1, 1])))


def _basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors completing `axis` to a right-handed orthonormal frame."""
    axis = _unit(axis)
    helper = X if abs(axis[0]) < 0.9 else Y
    u = _unit(np.cross(axis, helper))
    return u, np.cross(axis, u)


def _cylinder(p0: np.ndarray, p1: np.ndarray, radius: float, segments: int = 32) -> _Shell:
    """Capped cylinder from p0 to p1."""
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    u, v = _basis(p1 - p0)
    ring = radius * _circle(segments) @ np.stack([u, v])  # (S, 3)
    return _ring_shell(np.stack([p0 + ring, p1 + ring]), (p0, p1))


def _box(centre: np.ndarray, half: Sequence[float], frame: np.ndarray = np.eye(3)) -> _Shell:
    """Box with half extents `half` along the rows of `frame` (3, 3), centred at `centre`."""
    signs = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], np.float64) * 2 - 1
    vertices = np.asarray(centre, np.float64) + (signs * np.asarray(half)) @ np.asarray(frame, np.float64)
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return _oriented(vertices, faces)


def _prism(polygon: Sequence[tuple[float, float]], thickness: float, frame: np.ndarray,
           origin: np.ndarray) -> _Shell:
    """Convex polygon (P, 2) in the plane of frame rows 0 and 1, extruded +-thickness/2 along row 2."""
    poly = np.asarray(polygon, np.float64) @ np.asarray(frame, np.float64)[:2]  # (P, 3)
    offset = 0.5 * thickness * np.asarray(frame, np.float64)[2]
    rings = np.stack([poly - offset, poly + offset]) + origin
    centre = poly.mean(0) + origin
    return _ring_shell(rings, (centre - offset, centre + offset))


def _tube(path: np.ndarray, radius: float, normal: np.ndarray, segments: int = 12, closed: bool = False) -> _Shell:
    """Tube of `radius` along a planar path (K, 3) lying in the plane with unit `normal`; capped unless closed."""
    path = np.asarray(path, np.float64)
    step = np.roll(path, -1, 0) - np.roll(path, 1, 0) if closed else np.gradient(path, axis=0)
    tangent = step / np.linalg.norm(step, axis=1, keepdims=True)
    side = np.cross(tangent, normal)  # in the path's plane, perpendicular to the path
    circle = _circle(segments)
    rings = path[:, None] + radius * (circle[None, :, :1] * side[:, None] + circle[None, :, 1:] * normal)
    return _ring_shell(rings, None if closed else (path[0], path[-1]))


def _arc_path(base: np.ndarray, out: np.ndarray, up: np.ndarray, reach: float, half_span: float,
              points: int = 24) -> np.ndarray:
    """(points, 3) half ellipse from base - up*half_span out to base + out*reach and back to base + up*half_span."""
    phi = np.linspace(-np.pi / 2, np.pi / 2, points)
    return base + reach * np.cos(phi)[:, None] * out + half_span * np.sin(phi)[:, None] * up


def _part(name: str, affordance: str, shells: list[_Shell], centre: Sequence[float], axis: Sequence[float],
          approach: Sequence[float], radius: float, length: float) -> _Piece:
    part = ObjectPart(name, affordance, LABEL_IDS[affordance], np.asarray(centre, np.float64), _unit(axis),
                      _unit(approach), float(radius), float(length))
    return _Piece(part, shells)


def _loop_handle(name: str, affordance: str, base: np.ndarray, out: np.ndarray, up: np.ndarray, reach: float,
                 half_span: float, tube_radius: float) -> _Piece:
    """A half-ellipse handle (mug, jug, pot, bag strap, headband) whose ends enter the body at base +- up*half_span."""
    path = _arc_path(base, out, up, reach, half_span)
    shell = _tube(path, tube_radius, _unit(np.cross(out, up)))
    return _part(name, affordance, [shell], base + reach * out, up, out, tube_radius, 2 * half_span)


def _shoulder(r0: float, z0: float, r1: float, z1: float, points: int = 6) -> list[tuple[float, float]]:
    """Profile points easing from (r0, z0) to (r1, z1) along a half cosine, ends excluded."""
    t = np.linspace(0.0, 1.0, points + 2)[1:-1]
    r = r1 + (r0 - r1) * (1 + np.cos(np.pi * t)) / 2
    return list(zip(r.tolist(), (z0 + (z1 - z0) * t).tolist(), strict=True))


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))

