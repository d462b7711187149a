"""Synthetic grasps: the hand placed on a labelled part with a pose typical of the part's affordance, then
refined by gradient descent so it touches the part and barely penetrates it.

Each affordance has a style: how the fingers curl, which way they point relative to the part (around its
axis, into its surface, along its axis) and which hand regions must touch. The refinement moves the hand
(rotation, translation) and scales each digit's curl to minimise
    L = w_c * mean_contact relu(d - 2 mm)^2 + w_p * mean_all relu(-sd)^2 + w_r * |change|^2
where d is the distance of a contact-region vertex to the object surface and sd a point-to-plane signed
distance (nearest surface sample and its face normal). Exact contact and penetration are then measured with
trimesh (`grasp_quality`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from models.hand_regions import hand_regions as template_regions
from models.mano import ManoLayer, axis_angle_to_matrix
from models.mano_pickle import ManoParams
from models.synthetic_hand_pose import curl_pose
from models.synthetic_hand_spec import DIGITS, TIP_VERTICES
from ops.surface_sampling import sample_surface
from tasks.synth.objects import ObjectPart, SynthObject

Direction = Literal["around", "into", "along"]
FINGER_LENGTH = 0.085  # metres, base to tip of a long finger: sets how much a finger curls around a radius
CONTACT_MM = 5.0  # a grasp touches when a hand vertex is within 5 mm of (or inside) the object


@dataclass(frozen=True)
class GraspStyle:
    """How a hand takes a part for one affordance."""

    curl: float | None  # radians per joint; None: from the part radius (wrap the fingers around it)
    thumb_opposition: float
    fingers: Direction  # around the part axis, into the surface (press), or along the axis (flat hand)
    contact: tuple[str, ...]  # hand regions that must touch: palm, tips, index_tip, thumb_index
    index_straight: bool = False  # press: the index stays straight, the others fold


STYLES: dict[str, GraspStyle] = {
    "wrap-grasp": GraspStyle(None, 0.9, "around", ("palm", "tips")),
    "handle-grasp": GraspStyle(None, 0.5, "around", ("tips", "palm")),
    "lift": GraspStyle(None, 0.3, "around", ("tips",)),
    "pull": GraspStyle(1.1, 0.2, "around", ("tips",)),
    "twist": GraspStyle(None, 1.1, "around", ("thumb_index",)),
    "press": GraspStyle(1.3, 0.6, "into", ("index_tip",), index_straight=True),
    "support": GraspStyle(0.08, 0.0, "along", ("palm",)),
    "lever": GraspStyle(0.35, 0.2, "along", ("palm",)),
}


@dataclass
class SynthGrasp:
    """One grasp in the object frame. pose: (48,) axis-angle; betas: (10,); trans: (3,) m; verts: (778, 3) m."""

    object_id: str
    part: str
    affordance: str
    pose: np.ndarray
    betas: np.ndarray
    trans: np.ndarray
    verts: np.ndarray


@dataclass(frozen=True)
class GraspQuality:
    """Exact figures of one grasp: min distance of the hand to the surface (0 when inside), max depth inside."""

    contact_distance_mm: float
    penetration_depth_mm: float

    @property
    def touches(self) -> bool:
        return self.contact_distance_mm <= CONTACT_MM


def hand_regions(params: ManoParams) -> dict[str, np.ndarray]:
    """Vertex ids of the hand regions a style can require to touch (models/hand_regions.py)."""
    return template_regions(params.v_template, params.weights)


def _finger_pose(style: GraspStyle, part: ObjectPart, rng: np.random.Generator) -> np.ndarray:
    """(45,) finger pose for a style; the wrap curl follows the part radius (arc length L over 3 joints)."""
    curl = style.curl if style.curl is not None else float(np.clip(FINGER_LENGTH / (3 * max(part.radius, 1e-3)),
                                                                      0.25, 1.45))
    curl *= rng.uniform(0.9, 1.1)
    table: dict[str, float | tuple[float, float, float]] = {d: curl for d in DIGITS}
    table["thumb"] = (0.2 * curl, 0.5 * curl, 0.5 * curl)
    if style.index_straight:
        table["index"] = 0.05
    return curl_pose(table, thumb_opposition=style.thumb_opposition)


def _frame(style: GraspStyle, part: ObjectPart, rng: np.random.Generator) -> np.ndarray:
    """(3, 3) rotation taking the template's (finger +x, palm normal +y, thumb +z) onto the grasp's axes."""
    approach, axis = part.approach / np.linalg.norm(part.approach), part.axis / np.linalg.norm(part.axis)
    across = np.cross(axis, approach)
    if style.fingers == "around":
        finger, palm = across * rng.choice([-1.0, 1.0]), -approach
    elif style.fingers == "along":
        finger, palm = axis * rng.choice([-1.0, 1.0]), -approach
    else:  # into: the index points at the surface, the palm faces along the part axis
        finger, palm = -approach, axis * rng.choice([-1.0, 1.0])
    target = np.stack([finger, palm, np.cross(finger, palm)], axis=1)  # columns: where +x, +y, +z go
    jitter = Rotation.from_rotvec(approach * np.deg2rad(rng.uniform(-15, 15)))
    return jitter.as_matrix() @ target


def _anchor(style: GraspStyle, params: ManoParams, regions: dict[str, np.ndarray]) -> np.ndarray:
    """(3,) template point put on the part's surface: the index tip for a press, else the palm centre."""
    if style.fingers == "into":
        return params.v_template[TIP_VERTICES["index"]]
    return params.v_template[regions["palm"]].mean(0)


def _initial(obj_part: ObjectPart, style: GraspStyle, params: ManoParams, regions: dict[str, np.ndarray],
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rotation (3,3), trans (3,), finger pose (45,)) placing the anchor on the part surface."""
    rotation = _frame(style, obj_part, rng)
    slide = obj_part.axis * rng.uniform(-0.15, 0.15) * obj_part.length
    target = obj_part.centre + slide + obj_part.approach * (obj_part.radius + 0.004)
    j0 = params.J_regressor[0] @ params.v_template
    # MANO: v = R (v_local - J0) + J0 + trans, so trans = target - R (anchor - J0) - J0.
    trans = target - rotation @ (_anchor(style, params, regions) - j0) - j0
    return rotation, trans, _finger_pose(style, obj_part, rng)


def synthesize_grasps(obj: SynthObject, params: ManoParams, layer: ManoLayer, per_part: int,
                      rng: np.random.Generator, steps: int = 80) -> list[SynthGrasp]:
    """`per_part` refined grasps for every graspable part of `obj` (parts with no_affordance are skipped)."""
    parts = [p for p in obj.parts if p.affordance in STYLES]
    if not parts or per_part < 1:
        return []
    regions = hand_regions(params)
    starts = [(part, *_initial(part, STYLES[part.affordance], params, regions, rng))
              for part in parts for _ in range(per_part)]
    betas = rng.normal(scale=0.4, size=(len(starts), 10))
    contact = [np.concatenate([regions[r] for r in STYLES[p.affordance].contact]) for p, *_ in starts]
    result = _refine(obj, layer, params, starts, betas, contact, rng, steps)
    return [SynthGrasp(object_id=obj.object_id, part=part.name, affordance=part.affordance, pose=pose,
                       betas=betas[i].astype(np.float32), trans=trans, verts=verts)
            for i, ((part, *_), (pose, trans, verts)) in enumerate(zip(starts, result, strict=True))]


def _refine(obj: SynthObject, layer: ManoLayer, params: ManoParams, starts: list, betas: np.ndarray,
            contact: list[np.ndarray], rng: np.random.Generator, steps: int) -> list[tuple]:
    """Adam over (rotation change, translation, per-digit curl scale) for the batch of grasps of one object."""
    surface = sample_surface(obj.vertices, obj.faces, 4096, rng)
    tri = obj.vertices[obj.faces[surface.face_index]].astype(np.float64)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    points_t, normals_t = torch.tensor(surface.points, dtype=torch.float32), torch.tensor(normals, dtype=torch.float32)
    tree = cKDTree(surface.points.astype(np.float32))

    batch = len(starts)
    rot0 = torch.tensor(np.stack([s[1] for s in starts]), dtype=torch.float32)  # (B, 3, 3)
    trans0 = torch.tensor(np.stack([s[2] for s in starts]), dtype=torch.float32)  # (B, 3)
    fingers0 = torch.tensor(np.stack([s[3] for s in starts]), dtype=torch.float32)  # (B, 45)
    betas_t = torch.tensor(betas, dtype=torch.float32)
    j0 = layer.root_joint(betas_t)  # (B, 3)
    mask = torch.zeros(batch, 778)
    for i, ids in enumerate(contact):
        mask[i, ids] = 1.0
    d_rot = torch.zeros(batch, 3, requires_grad=True)
    d_trans = torch.zeros(batch, 3, requires_grad=True)
    scale = torch.ones(batch, 5, requires_grad=True)
    optimiser = torch.optim.Adam([{"params": [d_rot], "lr": 0.02}, {"params": [d_trans], "lr": 0.002},
                                  {"params": [scale], "lr": 0.02}])

    def pose_world():
        # One curl scale per digit, applied to its 3 joints x 3 axis-angle values (digits in MANO chain order).
        fingers = fingers0 * scale.clamp(0.3, 1.6).repeat_interleave(9, dim=1)
        local = layer(torch.cat([torch.zeros(batch, 3), fingers], 1), betas_t)[0] / 1000  # (B, 778, 3)
        rotation = axis_angle_to_matrix(d_rot) @ rot0
        # v = R (v_local - J0) + J0 + trans: MANO's own placement, with the global rotation applied here.
        verts = torch.einsum("bij,bvj->bvi", rotation, local - j0[:, None]) + j0[:, None] + (trans0 + d_trans)[:, None]
        return verts, rotation, fingers

    for _ in range(steps):
        verts, _, _ = pose_world()
        # Nearest surface sample of each vertex: an index only (no gradient), so a k-d tree answers it exactly and
        # about 5x faster than torch.cdist + argmin over (B, 778, 4096) distances.
        nearest = torch.from_numpy(tree.query(verts.detach().reshape(-1, 3).numpy())[1].reshape(batch, -1))
        offset = verts - points_t[nearest]
        signed = (offset * normals_t[nearest]).sum(-1)  # point-to-plane signed distance, metres
        distance = offset.norm(dim=-1)
        contact_loss = ((torch.relu(distance - 0.002) ** 2) * mask).sum() / mask.sum()
        penetration = (torch.relu(-signed) ** 2).mean()
        # Penetration weight measured on 32 grasps (one object per category): 200 -> mean depth 4.3 mm,
        # 600 -> 3.3 mm, 1500 -> 2.5 mm, contact (within 5 mm) 100 % in all three.
        regulariser = 1e-3 * (d_rot ** 2).mean() + 1e-4 * (scale - 1).pow(2).mean()
        loss = 10.0 * contact_loss + 1500.0 * penetration + regulariser
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    with torch.no_grad():
        verts, rotation, fingers = pose_world()
    out = []
    for i in range(batch):
        pose = np.concatenate([Rotation.from_matrix(rotation[i].double().numpy()).as_rotvec(), fingers[i].numpy()])
        out.append((pose.astype(np.float32), (trans0 + d_trans)[i].detach().numpy().astype(np.float32),
                    verts[i].numpy().astype(np.float32)))
    return out


def grasp_quality(obj: SynthObject, verts: np.ndarray) -> GraspQuality:
    """Exact contact distance and penetration depth of hand vertices (778, 3) against the object mesh."""
    mesh = trimesh.Trimesh(obj.vertices, obj.faces, process=False)
    inside = mesh.contains(verts)
    _, distance, _ = trimesh.proximity.closest_point(mesh, verts)
    depth = float(distance[inside].max()) if inside.any() else 0.0
    contact = 0.0 if inside.any() else float(distance.min())
    return GraspQuality(contact_distance_mm=contact * 1000, penetration_depth_mm=depth * 1000)
