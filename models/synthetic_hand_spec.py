"""The generated hand's proportions: digit specs, the palm's cross-sections, each digit's joint frame, and the
MANO joint order and fingertip vertices the mesh keeps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


OPPOSITION_AXIS = np.array([-0.95, -0.31, 0.1]) / np.linalg.norm([-0.95, -0.31, 0.1])

