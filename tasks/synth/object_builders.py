"""One builder per object category: random proportions within a category's range, and the parts (with their
affordance) each object is made of."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tasks.synth.shapes import (
    X,
    Y,
    Z,
    _box,
    _circle,
    _cylinder,
    _lathe,
    _loop_handle,
    _oriented,
    _part,
    _Piece,
    _prism,
    _Shell,
    _shoulder,
    _tube,
    _u,
    _unit,
)


def _cup_profile(r_bottom: float, r_top: float, height: float, wall: float, floor: float, z0: float
                 ) -> list[tuple[float, float]]:
    """(r, z) profile of an open-topped vessel: outer wall up, round the rim, inner wall down to the floor."""
    return [(0.0, z0), (r_bottom - 0.004, z0), (r_bottom, z0 + 0.004), (r_top, z0 + height),
            (r_top - wall, z0 + height), (r_bottom - wall, z0 + floor), (0.0, z0 + floor)]


def _mug(rng: np.random.Generator) -> list[_Piece]:
    height, r_bottom, wall = _u(rng, 0.08, 0.11), _u(rng, 0.034, 0.044), _u(rng, 0.003, 0.005)
    r_top = r_bottom * _u(rng, 1.0, 1.1)
    r_mid, z_base = (r_bottom + r_top) / 2, 0.003
    body = _lathe(_cup_profile(r_bottom, r_top, height, wall, 0.008, z_base), 40)
    r_disc, t_disc = r_bottom * 0.9, 0.004
    bottom = _cylinder((0, 0, 0), (0, 0, t_disc), r_disc)
    tube = _u(rng, 0.005, 0.007)
    base = np.array([r_mid - wall / 2, 0, z_base + height * _u(rng, 0.5, 0.56)])
    handle = _loop_handle("handle", "handle-grasp", base, X, Z, _u(rng, 0.02, 0.03),
                          height * _u(rng, 0.28, 0.34), tube)
    return [
        _part("body", "wrap-grasp", [body], (0, 0, z_base + height / 2), Z, -X, r_mid, height),
        handle,
        _part("bottom", "support", [bottom], (0, 0, t_disc / 2), X, -Z, t_disc / 2, 2 * r_disc),
    ]


def _bottle_profile(radius: float, r_neck: float, z_shoulder: float, z_neck: float, height: float
                    ) -> list[tuple[float, float]]:
    return [(0.0, 0.0), (radius - 0.005, 0.0), (radius, 0.005), (radius, z_shoulder),
            *_shoulder(radius, z_shoulder, r_neck, z_neck), (r_neck, z_neck), (r_neck, height), (0.0, height)]


def _cap(r_neck: float, top: float, rng: np.random.Generator, grow: float = 0.0015) -> tuple[_Shell, float, float]:
    """A screw cap over the top of a neck: (shell, centre height, half height)."""
    half = _u(rng, 0.007, 0.012)
    centre = top + half * 0.4  # 30 % of the cap sits below the neck's top, overlapping it
    return _cylinder((0, 0, centre - half), (0, 0, centre + half), r_neck + grow), centre, half


def _bottle(rng: np.random.Generator) -> list[_Piece]:
    height, radius = _u(rng, 0.18, 0.28), _u(rng, 0.028, 0.04)
    r_neck = _u(rng, 0.011, 0.015)
    z_shoulder, z_neck = height * _u(rng, 0.55, 0.7), height * _u(rng, 0.82, 0.88)
    body = _lathe(_bottle_profile(radius, r_neck, z_shoulder, z_neck, height))
    cap, z_cap, half = _cap(r_neck, height, rng)
    return [
        _part("body", "wrap-grasp", [body], (0, 0, z_shoulder / 2), Z, -X, radius, z_shoulder),
        _part("cap", "twist", [cap], (0, 0, z_cap), X, Z, half, 2 * (r_neck + 0.0015)),
    ]


def _handle_bottle(rng: np.random.Generator) -> list[_Piece]:
    height, radius = _u(rng, 0.2, 0.3), _u(rng, 0.05, 0.07)
    r_neck = _u(rng, 0.016, 0.022)
    z_shoulder, z_neck = height * _u(rng, 0.6, 0.7), height * _u(rng, 0.86, 0.9)
    body = _lathe(_bottle_profile(radius, r_neck, z_shoulder, z_neck, height))
    cap, z_cap, half = _cap(r_neck, height, rng)
    z_low = height * _u(rng, 0.25, 0.35)
    base = np.array([radius - 0.004, 0, (z_low + z_shoulder) / 2])
    handle = _loop_handle("handle", "handle-grasp", base, X, Z, _u(rng, 0.03, 0.04), (z_shoulder - z_low) / 2,
                          _u(rng, 0.008, 0.011))
    return [
        _part("body", "wrap-grasp", [body], (0, 0, z_shoulder / 2), Z, -X, radius, z_shoulder),
        handle,
        _part("cap", "twist", [cap], (0, 0, z_cap), X, Z, half, 2 * (r_neck + 0.0015)),
    ]


def _jar(rng: np.random.Generator) -> list[_Piece]:
    height, radius = _u(rng, 0.08, 0.14), _u(rng, 0.035, 0.055)
    r_neck = radius * _u(rng, 0.82, 0.92)
    z_shoulder = height * 0.86
    body = _lathe([(0.0, 0.0), (radius - 0.006, 0.0), (radius, 0.006), (radius, z_shoulder),
                   (r_neck, height * 0.92), (r_neck, height), (0.0, height)])
    lid, z_lid, half = _cap(r_neck, height, rng, grow=0.003)
    return [
        _part("body", "wrap-grasp", [body], (0, 0, z_shoulder / 2), Z, -X, radius, z_shoulder),
        _part("lid", "twist", [lid], (0, 0, z_lid), X, Z, half, 2 * (r_neck + 0.003)),
    ]


def _dispenser(rng: np.random.Generator) -> list[_Piece]:
    height, radius = _u(rng, 0.12, 0.18), _u(rng, 0.03, 0.04)
    r_neck, z_shoulder = _u(rng, 0.012, 0.015), height * _u(rng, 0.75, 0.82)
    body = _lathe(_bottle_profile(radius, r_neck, z_shoulder, height * 0.92, height))
    collar, z_collar, half_collar = _cap(r_neck, height, rng, grow=0.003)
    stem_top = z_collar + half_collar + _u(rng, 0.02, 0.03)
    stem = _cylinder((0, 0, z_collar), (0, 0, stem_top), _u(rng, 0.004, 0.005), 16)
    head_half = np.array([_u(rng, 0.016, 0.02), _u(rng, 0.011, 0.014), _u(rng, 0.007, 0.009)])
    head_centre = np.array([0, 0, stem_top + head_half[2] * 0.8])
    nozzle_len, r_nozzle = _u(rng, 0.03, 0.045), 0.004
    nozzle_path = head_centre + np.linspace(0.0, head_half[0] + nozzle_len, 8)[:, None] * X
    nozzle = _tube(nozzle_path, r_nozzle, Z, 12)
    return [
        _part("body", "wrap-grasp", [body], (0, 0, z_shoulder / 2), Z, -X, radius, z_shoulder),
        _part("collar", "twist", [collar], (0, 0, z_collar), Z, -X, r_neck + 0.003, 2 * half_collar),
        _part("stem", "no_affordance", [stem], (0, 0, (z_collar + stem_top) / 2), Z, -X, 0.0045,
              stem_top - z_collar),
        _part("pump", "press", [_box(head_centre, head_half)], head_centre, X, Z, head_half[2], 2 * head_half[0]),
        _part("nozzle", "no_affordance", [nozzle], nozzle_path[-2], X, Z, r_nozzle, nozzle_len),
    ]


def _faucet(rng: np.random.Generator) -> list[_Piece]:
    r_base, t_base = _u(rng, 0.028, 0.035), _u(rng, 0.008, 0.012)
    r_col, h_col = _u(rng, 0.016, 0.021), _u(rng, 0.1, 0.15)
    base = _cylinder((0, 0, 0), (0, 0, t_base), r_base)
    column = _cylinder((0, 0, t_base * 0.5), (0, 0, h_col), r_col)
    # Spout: straight out of the column's front (+x), then a quarter arc bending down.
    r_spout, reach, bend = _u(rng, 0.008, 0.011), _u(rng, 0.06, 0.1), _u(rng, 0.025, 0.04)
    z_spout = h_col - _u(rng, 0.02, 0.03)
    straight = np.linspace(0.0, reach, 10)[:, None] * X + (0, 0, z_spout)
    phi = np.linspace(0.0, np.pi / 2, 10)[1:]
    arc = np.column_stack([reach + bend * np.sin(phi), np.zeros_like(phi), z_spout - bend * (1 - np.cos(phi))])
    spout = _tube(np.concatenate([straight, arc]), r_spout, Y)
    # Lever: a bar on a hub on top of the column, pointing back (-x) and tilted up by `tilt`.
    hub_top = h_col + _u(rng, 0.012, 0.02)
    hub = _cylinder((0, 0, h_col - 0.005), (0, 0, hub_top), r_col * 0.85)
    tilt, length, half_t = np.radians(_u(rng, 12, 30)), _u(rng, 0.06, 0.09), _u(rng, 0.004, 0.006)
    direction, lift_dir = np.array([-np.cos(tilt), 0, np.sin(tilt)]), np.array([np.sin(tilt), 0, np.cos(tilt)])
    centre = np.array([0, 0, hub_top - half_t]) + direction * length / 2
    lever = _box(centre, (length / 2, _u(rng, 0.006, 0.009), half_t), np.stack([direction, Y, lift_dir]))
    return [
        _part("base", "no_affordance", [base, column], (0, 0, h_col / 2), Z, -X, r_col, h_col),
        _part("spout", "no_affordance", [spout], (reach / 2, 0, z_spout), X, Z, r_spout, reach),
        _part("hub", "no_affordance", [hub], (0, 0, (h_col + hub_top) / 2), Z, Y, r_col * 0.85, hub_top - h_col),
        _part("lever", "lever", [lever], centre, direction, lift_dir, half_t, length),
    ]


def _laptop(rng: np.random.Generator) -> list[_Piece]:
    width, depth, t_base = _u(rng, 0.3, 0.38), _u(rng, 0.2, 0.26), _u(rng, 0.014, 0.02)
    t_lid, angle = _u(rng, 0.005, 0.008), np.radians(_u(rng, 95, 125))
    base = _box((0, 0, t_base / 2), (width / 2, depth / 2, t_base / 2))
    # The lid turns about the hinge (the base's back top edge); closed (angle 0) it lies on the base.
    hinge = np.array([0, depth / 2, t_base])
    along = np.array([0, -np.cos(angle), np.sin(angle)])  # from the hinge to the lid's free edge
    back = np.array([0, np.sin(angle), np.cos(angle)])  # the lid's outer face normal
    lid_centre = hinge + along * depth / 2 + back * t_lid / 2
    lid = _box(lid_centre, (width / 2, depth / 2, t_lid / 2), np.stack([X, along, back]))
    lip_half = (width * _u(rng, 0.12, 0.2), 0.004, t_lid / 2 + 0.0015)
    lip_centre = hinge + along * (depth - lip_half[1] + 0.001) + back * t_lid / 2
    lip = _box(lip_centre, lip_half, np.stack([X, along, back]))
    return [
        _part("base", "support", [base], (0, 0, t_base / 2), X, -Z, t_base / 2, width),
        _part("lid", "lift", [lid], lid_centre, X, back, t_lid / 2, width),
        _part("lid_edge", "pull", [lip], lip_centre, X, along, lip_half[1], 2 * lip_half[0]),
    ]


def _knife(rng: np.random.Generator) -> list[_Piece]:
    l_handle, r_handle, squash = _u(rng, 0.09, 0.12), _u(rng, 0.009, 0.012), _u(rng, 0.6, 0.75)
    l_blade, h_blade, t_blade = _u(rng, 0.1, 0.2), _u(rng, 0.02, 0.045), _u(rng, 0.0015, 0.0025)
    # Handle: a rounded rod along x with an oval cross-section (narrower in y), ending in the blade's heel.
    rod = _lathe([(0.0, 0.0), (r_handle * 0.7, 0.0), (r_handle, 0.008), (r_handle, l_handle - 0.006),
                  (r_handle * 0.85, l_handle), (0.0, l_handle)], 24)
    to_x = np.array([[0, 0, 1], [0, squash, 0], [-1, 0, 0]], np.float64)  # local z -> -x, y squashed
    handle = _oriented(rod.vertices @ to_x + (0.005, 0, 0), rod.faces)
    spine, edge = r_handle * 0.6, r_handle * 0.6 - h_blade  # blade spine near the handle's top, edge below
    polygon = [(0.0, edge), (0.7 * l_blade, edge), (0.9 * l_blade, edge + 0.4 * (spine - edge)),
               (l_blade, spine), (0.0, spine)]
    blade = _prism(polygon, t_blade, np.stack([X, Z, Y]), np.zeros(3))
    return [
        _part("handle", "handle-grasp", [handle], (0.005 - l_handle / 2, 0, 0), X, Z, r_handle, l_handle),
        _part("blade", "no_affordance", [blade], (l_blade / 2, 0, (spine + edge) / 2), X, Y, t_blade / 2, l_blade),
    ]


def _scissors(rng: np.random.Generator) -> list[_Piece]:
    l_blade, w_blade, t_blade = _u(rng, 0.06, 0.1), _u(rng, 0.01, 0.014), 0.002
    opening = np.radians(_u(rng, 3, 12))
    ring_r, tube, shank = _u(rng, 0.011, 0.016), _u(rng, 0.003, 0.004), _u(rng, 0.035, 0.05)
    pieces = []
    for side in (1, -1):
        blade_dir = np.array([np.cos(opening), side * np.sin(opening), 0])
        frame = np.stack([blade_dir, np.cross(Z, blade_dir), Z])
        polygon = [(-0.012, -w_blade / 2), (l_blade, -0.001), (l_blade, 0.001), (-0.012, w_blade / 2)]
        blade = _prism(polygon, t_blade, frame, side * np.array([0, 0, t_blade / 2]))
        pieces.append(_part(f"blade_{'left' if side > 0 else 'right'}", "no_affordance", [blade],
                            blade_dir * l_blade / 2 + (0, 0, side * t_blade / 2), blade_dir, Z, t_blade / 2,
                            l_blade))
        ring_centre = np.array([-shank, -side * (ring_r + tube + 0.002), 0])
        out = _unit(ring_centre)  # away from the pivot at the origin
        ring = _tube(ring_centre + ring_r * np.column_stack([_circle(24), np.zeros(24)]), tube, Z, 8, closed=True)
        stem_path = np.linspace(np.zeros(3), ring_centre - out * ring_r, 6)
        stem = _tube(stem_path, tube * 1.1, Z, 8)
        pieces.append(_part(f"ring_{'left' if side < 0 else 'right'}", "handle-grasp", [ring, stem],
                            ring_centre + out * ring_r, np.cross(Z, out), out, tube, 2 * ring_r))
    pivot = _cylinder((0, 0, -t_blade - 0.001), (0, 0, t_blade + 0.001), 0.004, 16)
    return [*pieces, _part("pivot", "no_affordance", [pivot], (0, 0, 0), X, Z, t_blade + 0.001, 0.008)]


def _pot(rng: np.random.Generator) -> list[_Piece]:
    radius, height, wall = _u(rng, 0.08, 0.12), _u(rng, 0.08, 0.14), _u(rng, 0.003, 0.005)
    z_base = 0.003
    body = _lathe(_cup_profile(radius, radius, height, wall, 0.006, z_base), 48)
    r_disc, t_disc = radius * 0.9, 0.004
    bottom = _cylinder((0, 0, 0), (0, 0, t_disc), r_disc, 48)
    z_handle, reach, half_span = z_base + height * _u(rng, 0.75, 0.85), _u(rng, 0.025, 0.04), _u(rng, 0.02, 0.035)
    tube = _u(rng, 0.006, 0.008)
    handles = [_loop_handle(name, "lift", np.array([side * (radius - wall / 2), 0, z_handle]), side * X, Y, reach,
                            half_span, tube) for name, side in (("handle_right", 1), ("handle_left", -1))]
    return [
        _part("body", "wrap-grasp", [body], (0, 0, z_base + height / 2), Z, -Y, radius, height),
        *handles,
        _part("bottom", "support", [bottom], (0, 0, t_disc / 2), X, -Z, t_disc / 2, 2 * r_disc),
    ]


def _bag(rng: np.random.Generator) -> list[_Piece]:
    width, height, depth = _u(rng, 0.25, 0.4), _u(rng, 0.2, 0.3), _u(rng, 0.08, 0.15)
    top = width * _u(rng, 0.8, 0.95) / 2
    polygon = [(-width / 2, 0.0), (width / 2, 0.0), (top, height), (-top, height)]
    body = _prism(polygon, depth, np.stack([X, Z, Y]), np.zeros(3))
    half_span, rise, tube = width * _u(rng, 0.18, 0.25), _u(rng, 0.1, 0.18), _u(rng, 0.005, 0.008)
    straps = [_loop_handle(name, "lift", np.array([0, side * depth * 0.35, height - 0.01]), Z, X, rise + 0.01,
                           half_span, tube) for name, side in (("strap_front", -1), ("strap_back", 1))]
    tab_half = (0.004, 0.002, 0.01)
    tab_centre = np.array([top - 0.03, 0, height + tab_half[2] * 0.8])
    return [
        _part("body", "no_affordance", [body], (0, 0, height / 2), X, -Y, depth / 2, width),
        *straps,
        _part("zip_pull", "pull", [_box(tab_centre, tab_half)], tab_centre, Y, Z, tab_half[2], 2 * tab_half[1]),
    ]


def _keyboard(rng: np.random.Generator) -> list[_Piece]:
    width, depth, t_case = _u(rng, 0.35, 0.45), _u(rng, 0.12, 0.15), _u(rng, 0.02, 0.03)
    pitch, h_key = 0.019, _u(rng, 0.006, 0.009)
    key = pitch * _u(rng, 0.8, 0.9) / 2
    cols = int((width - 0.02) // pitch)
    z_key = t_case + h_key / 2 - 0.001  # keys sink 1 mm into the case
    x0, y0 = -(cols - 1) * pitch / 2, -2 * pitch
    keys = [_box((x0 + c * pitch, y0 + r * pitch, z_key), (key, key, h_key / 2))
            for r in range(1, 5) for c in range(cols)]
    # Bottom row: a space bar six keys wide between ordinary keys.
    space_left, space_right = cols // 2 - 3, cols // 2 + 3
    keys += [_box((x0 + c * pitch, y0, z_key), (key, key, h_key / 2))
             for c in range(cols) if not space_left <= c < space_right]
    keys.append(_box((x0 + (space_left + space_right - 1) / 2 * pitch, y0, z_key),
                     (3 * pitch - (pitch / 2 - key), key, h_key / 2)))
    mid = (x0 + cols // 2 * pitch, y0 + 2 * pitch, z_key)
    case = _box((0, 0, t_case / 2), (width / 2, depth / 2, t_case / 2))
    return [
        _part("keys", "press", keys, mid, X, Z, h_key / 2, 2 * key),
        _part("case", "support", [case], (0, 0, t_case / 2), X, -Z, t_case / 2, width),
    ]


def _earphone(rng: np.random.Generator) -> list[_Piece]:
    half_width, rise, tube = _u(rng, 0.075, 0.09), _u(rng, 0.11, 0.15), _u(rng, 0.007, 0.01)
    r_cup, t_cup = _u(rng, 0.035, 0.045), _u(rng, 0.025, 0.035)
    z_band = r_cup * 0.6  # the band's ends sink into the cups' upper halves
    band = _loop_handle("headband", "lift", np.array([0, 0, z_band]), Z, X, rise, half_width, tube)
    cups = [_part(name, "press", [_cylinder((side * (half_width - t_cup / 2), 0, 0),
                                            (side * (half_width + t_cup / 2), 0, 0), r_cup)],
                  (side * half_width, 0, 0), Z, side * X, t_cup / 2, 2 * r_cup)
            for name, side in (("cup_right", 1), ("cup_left", -1))]
    return [band, *cups]


_BUILDERS: dict[str, Callable[[np.random.Generator], list[_Piece]]] = {
    "bag": _bag, "bottle": _bottle, "dispenser": _dispenser, "earphone": _earphone, "faucet": _faucet,
    "handle-bottle": _handle_bottle, "jar": _jar, "keyboard": _keyboard, "knife": _knife, "laptop": _laptop,
    "mug": _mug, "pot": _pot, "scissors": _scissors,
}

