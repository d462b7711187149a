"""ManoLayer on a small random MANO model: rest pose, a naive numpy reference, PCA and hand-mean conventions,
placement (manopth's rule), global rotation, gradients, root joint, input checks, and manopth when installed."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.spatial.transform import Rotation

from models.mano import JOINT_ORDER, ManoLayer, axis_angle_to_matrix
from models.mano_pickle import ManoParams, save_mano_pickle
from tests.models import MANO_PARENTS, random_mano_params

TIPS = [745, 317, 444, 556, 673]  # thumb, index, middle, ring, pinky


@pytest.fixture(scope="module")
def params() -> ManoParams:
    """Values on the float32 grid: the layer stores float32 buffers, and its float64 copy (make_layer) must then
    hold exactly these numbers for comparisons at 1e-9 mm."""
    arrays = random_mano_params(seed=3).to_dict()
    return ManoParams(**{name: value.astype(np.float32) if value.dtype == np.float64 else value
                         for name, value in arrays.items()})


def make_layer(params: ManoParams, **kwargs: Any) -> ManoLayer:
    """A float64 layer, so comparisons can be tight."""
    return ManoLayer(params=params, **kwargs).double()


def random_pose(batch: int, width: int, scale: float = 0.5, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def reference_forward(params: ManoParams, full_pose: np.ndarray, betas: np.ndarray,
                      trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One hand, written out joint by joint with scipy's rotations. full_pose: (48,) -> metres, MANO order."""
    rots = Rotation.from_rotvec(full_pose.reshape(16, 3)).as_matrix()
    v_shaped = params.v_template + params.shapedirs @ betas
    rest = params.J_regressor @ v_shaped
    v_posed = v_shaped + params.posedirs @ (rots[1:] - np.eye(3)).reshape(-1)
    world: list[np.ndarray] = []
    for joint, parent in enumerate(MANO_PARENTS):
        local = np.eye(4)
        local[:3, :3] = rots[joint]
        local[:3, 3] = rest[joint] - (rest[parent] if joint else 0)
        world.append(local if joint == 0 else world[parent] @ local)
    verts = np.zeros((778, 3))
    for joint, g in enumerate(world):
        moved = v_posed @ g[:3, :3].T + g[:3, 3] - g[:3, :3] @ rest[joint]
        verts += params.weights[:, joint : joint + 1] * moved
    joints = np.array([g[:3, 3] for g in world])
    return verts + trans, joints + trans


def test_axis_angle_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal(size=(20, 3)), rng.normal(size=(5, 3)) * 1e-5, np.zeros((1, 3)),
                              [[np.pi - 1e-6, 0, 0], [0, 3.0, 1.0]]])
    got = axis_angle_to_matrix(torch.from_numpy(vectors)).numpy()
    np.testing.assert_allclose(got, Rotation.from_rotvec(vectors).as_matrix(), atol=1e-12)


def test_axis_angle_gradient_is_finite_at_zero() -> None:
    vectors = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    (axis_angle_to_matrix(vectors) * torch.arange(9.0, dtype=torch.float64).view(3, 3)).sum().backward()
    assert torch.isfinite(vectors.grad).all() and vectors.grad.abs().sum() > 0


def test_rest_pose_is_the_template(params: ManoParams) -> None:
    verts, joints = make_layer(params, use_pca=False)(torch.zeros(2, 48, dtype=torch.float64))
    np.testing.assert_allclose(verts.numpy(), np.broadcast_to(params.v_template * 1000, (2, 778, 3)), atol=1e-9)
    mano16 = params.J_regressor @ params.v_template
    expected = np.concatenate([mano16, params.v_template[TIPS]])[list(JOINT_ORDER)] * 1000
    np.testing.assert_allclose(joints[0].numpy(), expected, atol=1e-9)
    # The order, spelled out: wrist, then each finger base->tip; MANO's chains are index, middle, pinky, ring, thumb.
    chains = {"thumb": (13, 745), "index": (1, 317), "middle": (4, 444), "ring": (10, 556), "pinky": (7, 673)}
    np.testing.assert_allclose(joints[0, 0].numpy(), mano16[0] * 1000, atol=1e-9)
    for slot, (first, tip) in enumerate(chains.values()):
        block = joints[0, 1 + 4 * slot : 5 + 4 * slot].numpy()
        np.testing.assert_allclose(block[:3], mano16[first : first + 3] * 1000, atol=1e-9)
        np.testing.assert_allclose(block[3], params.v_template[tip] * 1000, atol=1e-9)


def test_matches_a_naive_reference(params: ManoParams) -> None:
    pose, betas = random_pose(3, 48, seed=1), random_pose(3, 10, scale=2.0, seed=2)
    trans = random_pose(3, 3, scale=0.1, seed=3)
    verts, joints = make_layer(params, use_pca=False)(pose, betas, trans)
    for i in range(3):
        ref_verts, ref_joints = reference_forward(params, pose[i].numpy(), betas[i].numpy(), trans[i].numpy())
        ref_joints = np.concatenate([ref_joints, ref_verts[TIPS]])[list(JOINT_ORDER)]
        np.testing.assert_allclose(verts[i].numpy(), ref_verts * 1000, atol=1e-9)
        np.testing.assert_allclose(joints[i].numpy(), ref_joints * 1000, atol=1e-9)


@pytest.mark.parametrize("ncomps", [6, 45])
def test_pca_coefficients_equal_their_full_pose(params: ManoParams, ncomps: int) -> None:
    coeffs = random_pose(2, 3 + ncomps, seed=4)
    full = torch.cat([coeffs[:, :3], coeffs[:, 3:] @ torch.tensor(params.hands_components[:ncomps])], 1)
    for flat in (True, False):
        pca_out = make_layer(params, ncomps=ncomps, flat_hand_mean=flat)(coeffs)
        full_out = make_layer(params, use_pca=False, flat_hand_mean=flat)(full)
        for got, want in zip(pca_out, full_out, strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("use_pca", [True, False])
def test_hand_mean_is_added_unless_flat(params: ManoParams, use_pca: bool) -> None:
    width = 3 + 45
    coeffs = random_pose(2, width, seed=5)
    mean = torch.tensor(params.hands_mean)
    # The mean in the input's basis: PCA coefficients c with c @ hands_components = hands_mean.
    shift = torch.linalg.solve(torch.tensor(params.hands_components).T, mean) if use_pca else mean
    with_mean = make_layer(params, use_pca=use_pca, ncomps=45, flat_hand_mean=False)(coeffs)
    flat = make_layer(params, use_pca=use_pca, ncomps=45, flat_hand_mean=True)(
        torch.cat([coeffs[:, :3], coeffs[:, 3:] + shift], 1))
    for got, want in zip(with_mean, flat, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-9)
    assert not torch.allclose(with_mean[0], make_layer(params, use_pca=use_pca, ncomps=45)(coeffs)[0])


def test_translation_shifts_every_vertex_and_joint(params: ManoParams) -> None:
    layer, pose = make_layer(params), random_pose(2, 9, seed=6)
    trans = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.05, 0.0]], dtype=torch.float64)
    verts0, joints0 = layer(pose)
    verts, joints = layer(pose, th_trans=trans)
    torch.testing.assert_close(verts - verts0, (trans * 1000)[:, None].expand_as(verts), rtol=0, atol=1e-9)
    torch.testing.assert_close(joints - joints0, (trans * 1000)[:, None].expand_as(joints), rtol=0, atol=1e-9)


def test_center_idx_follows_manopth(params: ManoParams) -> None:
    """Without translation joint center_idx goes to the origin; with one, manopth ignores center_idx."""
    pose, trans = random_pose(2, 9, seed=7), torch.tensor([[0.1, 0.2, 0.3]] * 2, dtype=torch.float64)
    free_verts, free_joints = make_layer(params)(pose)
    for center_idx in (0, 9):
        layer = make_layer(params, center_idx=center_idx)
        verts, joints = layer(pose)
        torch.testing.assert_close(joints[:, center_idx], torch.zeros(2, 3, dtype=torch.float64))
        torch.testing.assert_close(verts, free_verts - free_joints[:, center_idx : center_idx + 1])
        torch.testing.assert_close(layer(pose, th_trans=torch.zeros(2, 3, dtype=torch.float64))[1], joints)
        torch.testing.assert_close(layer(pose, th_trans=trans)[1], free_joints + trans[:, None] * 1000)


def test_global_rotation_turns_the_centred_hand(params: ManoParams) -> None:
    layer = make_layer(params, center_idx=0, use_pca=False)
    pose = random_pose(1, 48, seed=8)
    pose[:, :3] = 0
    turned = pose.clone()
    turned[:, :3] = torch.tensor([0.0, 0.0, np.pi / 2], dtype=torch.float64)
    rz90 = Rotation.from_rotvec([0.0, 0.0, np.pi / 2])
    (verts, joints), (verts_r, joints_r) = layer(pose), layer(turned)
    np.testing.assert_allclose(verts_r[0].numpy(), rz90.apply(verts[0].numpy()), atol=1e-9)
    np.testing.assert_allclose(joints_r[0].numpy(), rz90.apply(joints[0].numpy()), atol=1e-9)
    np.testing.assert_allclose(joints_r[0, 5].numpy()[[0, 1]], [-joints[0, 5, 1], joints[0, 5, 0]], atol=1e-9)


@pytest.mark.parametrize("scale", [0.0, 0.5])
def test_gradients_reach_pose_betas_and_trans(params: ManoParams, scale: float) -> None:
    pose = random_pose(2, 9, scale=scale, seed=9).requires_grad_()
    betas = random_pose(2, 10, seed=10).requires_grad_()
    trans = (random_pose(2, 3, scale=0.1, seed=11) + 0.01).requires_grad_()
    verts, joints = make_layer(params)(pose, betas, trans)
    (verts.square().sum() + joints.square().sum()).backward()
    for tensor in (pose, betas, trans):
        assert torch.isfinite(tensor.grad).all() and (tensor.grad.abs() > 0).all()


def test_root_joint_is_the_wrist_for_any_pose(params: ManoParams) -> None:
    layer, betas = make_layer(params), random_pose(3, 10, scale=2.0, seed=12)
    expected = torch.stack([torch.tensor(params.J_regressor[0] @ (params.v_template + params.shapedirs @ b))
                            for b in betas.numpy()])
    torch.testing.assert_close(layer.root_joint(betas), expected, rtol=0, atol=1e-12)
    for pose in (torch.zeros(3, 9, dtype=torch.float64), random_pose(3, 9, seed=13)):
        torch.testing.assert_close(layer(pose, betas)[1][:, 0] / 1000, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("args", "name", "message"), [
    ({"th_pose_coeffs": torch.zeros(2, 10)}, "th_pose_coeffs", r"expected shape \(B, 9\), got \(2, 10\)"),
    ({"th_pose_coeffs": torch.zeros(9)}, "th_pose_coeffs", r"expected shape \(B, 9\), got \(9,\)"),
    ({"th_betas": torch.zeros(2, 9)}, "th_betas", r"expected shape \(2, 10\), got \(2, 9\)"),
    ({"th_betas": torch.zeros(3, 10)}, "th_betas", r"expected shape \(2, 10\), got \(3, 10\)"),
    ({"th_trans": torch.zeros(2, 2)}, "th_trans", r"expected shape \(2, 3\), got \(2, 2\)"),
    ({"th_pose_coeffs": torch.full((2, 9), float("nan"))}, "th_pose_coeffs", "expected finite"),
    ({"th_betas": torch.full((2, 10), float("inf"))}, "th_betas", "expected finite"),
    ({"th_trans": torch.tensor([[0.0, float("nan"), 0.0]] * 2)}, "th_trans", "expected finite"),
    ({"th_pose_coeffs": torch.zeros(2, 9, dtype=torch.long)}, "th_pose_coeffs", "expected a floating-point"),
    ({"th_pose_coeffs": np.zeros((2, 9))}, "th_pose_coeffs", r"expected a torch\.Tensor"),
])
def test_bad_inputs_are_named(params: ManoParams, args: dict[str, Any], name: str, message: str) -> None:
    inputs = {"th_pose_coeffs": torch.zeros(2, 9), "th_betas": None, "th_trans": None} | args
    with pytest.raises(ValueError, match=rf"^{name}: {message}"):
        ManoLayer(params=params)(**inputs)


def test_root_joint_checks_betas(params: ManoParams) -> None:
    with pytest.raises(ValueError, match=r"^th_betas: expected shape \(B, 10\), got \(10,\)"):
        ManoLayer(params=params).root_joint(torch.zeros(10))
    with pytest.raises(ValueError, match=r"^th_betas: expected finite"):
        ManoLayer(params=params).root_joint(torch.full((1, 10), float("nan")))


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"root_rot_mode": "rot6d"}, NotImplementedError, "axis-angle"),
    ({"joint_rot_mode": "rotmat", "use_pca": False}, NotImplementedError, "axis-angle"),
    ({"side": "middle"}, ValueError, "^side"),
    ({"ncomps": 0}, ValueError, "^ncomps"),
    ({"ncomps": 46}, ValueError, "^ncomps"),
    ({"center_idx": 21}, ValueError, "^center_idx"),
])
def test_bad_configuration(params: ManoParams, kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ManoLayer(params=params, **kwargs)


def test_buffers_dtypes_and_loading_from_mano_root(tmp_path: Path, params: ManoParams) -> None:
    save_mano_pickle(tmp_path / "MANO_LEFT.pkl", params)
    layer = ManoLayer(mano_root=tmp_path, side="left", ncomps=12)
    assert layer.th_faces.dtype == torch.long and torch.equal(layer.th_faces, torch.tensor(params.f))
    assert layer.th_selected_comps.shape == (12, 45) and layer.th_v_template.dtype == torch.float32
    assert "th_posedirs" in layer.state_dict()
    verts, joints = layer(torch.zeros(1, 15, dtype=torch.float64))  # cast to the layer's float32
    assert verts.dtype == joints.dtype == torch.float32
    torch.testing.assert_close(joints[0, 12], verts[0, 445])  # manopth's left middle tip is vertex 445
    with pytest.raises(FileNotFoundError, match="MANO_RIGHT"):
        ManoLayer(mano_root=tmp_path, side="right")


def test_matches_manopth(tmp_path: Path, params: ManoParams) -> None:
    pytest.importorskip("chumpy")
    manopth_layer = pytest.importorskip("manopth.manolayer")
    raw = params.to_dict() | {"J_regressor": sp.csc_matrix(params.J_regressor), "bs_type": "lrotmin",
                              "bs_style": "lbs"}
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(pickle.dumps(raw, protocol=2))
    pose, betas = random_pose(2, 12, seed=14).float(), random_pose(2, 10, seed=15).float()
    trans = random_pose(2, 3, scale=0.1, seed=16).float()
    for kwargs in ({"ncomps": 9, "flat_hand_mean": False}, {"ncomps": 9, "center_idx": 0}):
        theirs = manopth_layer.ManoLayer(mano_root=str(tmp_path), **kwargs)
        ours = ManoLayer(params=params, **kwargs)
        for trans_in in (None, trans):
            expected = theirs(pose, betas, torch.zeros(1) if trans_in is None else trans_in)
            for got, want in zip(ours(pose, betas, trans_in), expected[:2], strict=True):
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3)
