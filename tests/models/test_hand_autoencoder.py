"""Hand autoencoder: the 61-value MANO layout round-trips, shapes, standardised decoder and parameter loss,
the variational option and its KL, MANO vertices in metres, and bad inputs refused by name."""

import pytest
import torch

from models.hand_autoencoder import (
    MANO_DIM,
    HandAEConfig,
    HandAutoencoder,
    kl_divergence,
    mano_vector,
    mano_vertices,
    split_mano,
)
from models.mano import ManoLayer
from tests.grasp_factories import single_thread
from tests.models import random_mano_params


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()

TINY = HandAEConfig(latent_dim=8, point_widths=(8, 16), decoder_widths=(16,))


def test_mano_vector_layout_round_trips():
    pose, betas, trans = torch.randn(3, 48), torch.randn(3, 10), torch.randn(3, 3)
    x = mano_vector(pose, betas, trans)
    assert x.shape == (3, MANO_DIM)
    assert torch.equal(x[:, :10], betas) and torch.equal(x[:, 10:13], pose[:, :3])
    assert torch.equal(x[:, 13:58], pose[:, 3:]) and torch.equal(x[:, 58:], trans)
    back = split_mano(x)
    assert all(torch.equal(a, b) for a, b in zip(back, (pose, betas, trans), strict=True))
    with pytest.raises(ValueError, match="MANO vector"):
        split_mano(torch.zeros(2, 60))


def test_mano_vertices_are_the_layer_output_in_metres():
    layer = ManoLayer(use_pca=False, flat_hand_mean=True, params=random_mano_params(seed=1))
    x = torch.randn(2, MANO_DIM) * 0.1
    pose, betas, trans = split_mano(x)
    expected, _ = layer(pose, betas, trans)
    torch.testing.assert_close(mano_vertices(layer, x), expected / 1000)


def test_shapes_and_standardised_decoder():
    model = HandAutoencoder(TINY)
    verts = torch.randn(4, 778, 3) * 0.05
    out = model(verts)
    assert out.mano.shape == (4, MANO_DIM) and out.latent.shape == (4, 8) and out.logvar is None
    vectors = torch.randn(20, MANO_DIM) * torch.linspace(0.001, 1, MANO_DIM) + 3
    model.set_param_stats(vectors)
    with torch.no_grad():
        model.decoder[-1].weight.zero_()
        model.decoder[-1].bias.zero_()
    torch.testing.assert_close(model.decode(out.latent), vectors.mean(0).expand(4, -1))  # output 0 -> the mean
    delta = model.param_std * 2  # an error of two standard deviations in every value costs 4
    assert model.param_loss(vectors[:4] + delta, vectors[:4]).item() == pytest.approx(4.0, rel=1e-5)


def test_variational_option_samples_in_training_and_not_in_eval():
    model = HandAutoencoder(HandAEConfig(latent_dim=8, point_widths=(8,), decoder_widths=(16,), variational=True))
    verts = torch.randn(2, 778, 3) * 0.05
    out = model.train()(verts)
    assert out.logvar is not None and not torch.equal(out.latent, out.mean)
    assert torch.equal(model.eval()(verts).latent, model.encode(verts))
    assert kl_divergence(torch.zeros(2, 8), torch.zeros(2, 8)).item() == 0.0
    assert kl_divergence(torch.ones(2, 8), torch.zeros(2, 8)).item() == pytest.approx(4.0)


def test_mlp_encoder_sees_vertex_order_and_pointnet_does_not():
    verts = torch.randn(2, 778, 3) * 0.05
    shuffled = verts[:, torch.randperm(778)]
    pointnet = HandAutoencoder(TINY).eval()
    torch.testing.assert_close(pointnet.encode(shuffled), pointnet.encode(verts))  # max-pool: order-free
    ordered = HandAutoencoder(HandAEConfig(latent_dim=8, point_widths=(16,), decoder_widths=(16,), encoder="mlp"))
    assert ordered(verts).mano.shape == (2, MANO_DIM)
    assert not torch.allclose(ordered.encode(shuffled), ordered.encode(verts))
    with pytest.raises(ValueError, match="encoder must be one of pointnet, mlp, got 'cnn'"):
        HandAEConfig(encoder="cnn")


def test_bad_inputs_are_refused():
    model = HandAutoencoder(TINY)
    with pytest.raises(ValueError, match="hand_verts"):
        model.encode(torch.zeros(2, 700, 3))
    with pytest.raises(ValueError, match="latent_dim"):
        HandAEConfig(latent_dim=0)
    with pytest.raises(ValueError, match="vectors"):
        model.set_param_stats(torch.zeros(0, MANO_DIM))


def test_the_6d_rotation_head_decodes_valid_mano_vectors_and_compares_rotations_as_matrices():
    import numpy as np

    from models.hand_autoencoder import HandAEConfig, HandAutoencoder
    from models.mano import axis_angle_to_matrix

    torch.manual_seed(0)
    ae = HandAutoencoder(HandAEConfig(latent_dim=8, point_widths=(16,), decoder_widths=(16,), encoder="mlp",
                                      rotation="6d"))
    assert ae.decoder[-1].out_features == 64  # 10 betas + 6 rotation values + 45 fingers + 3 translation
    x = ae.decode(torch.randn(5, 8))
    assert x.shape == (5, 61) and bool(torch.isfinite(x).all())
    assert float(x[:, 10:13].norm(dim=-1).max()) <= np.pi + 1e-5
    target = x.detach().clone()
    assert float(ae.param_loss(target, target)) < 1e-10
    # a rotation by pi about n and one by just under pi about -n are neighbours: as matrices, not as vectors
    near = target.clone()
    near[:, 10:13] = torch.tensor([0.0, 0.0, np.pi])
    far = near.clone()
    far[:, 10:13] = torch.tensor([0.0, 0.0, -(np.pi - 1e-3)])
    assert float(ae.param_loss(far, near)) < 1e-5
    assert torch.allclose(axis_angle_to_matrix(far[:, 10:13]), axis_angle_to_matrix(near[:, 10:13]), atol=1e-3)
    with pytest.raises(ValueError, match="rotation must be one of axis_angle, 6d, got 'quat'"):
        HandAEConfig(rotation="quat")


def test_the_small_preset_uses_the_6d_head_and_the_vertex_to_vertex_loss():
    from tasks.grasp.config import preset_config

    config = preset_config("small")
    assert config.model_config().ae.rotation == "6d" and config.ae_v2v > 0 and config.ae_chamfer == 0
    assert preset_config("paper").model_config().ae.rotation == "axis_angle"  # FastGrasp's sizes stay FastGrasp's
