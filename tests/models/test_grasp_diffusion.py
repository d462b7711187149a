"""Latent diffusion: the linear schedule, q_sample, condition fusion shapes, condition dropout (actually applied
in the loss), DDIM exactness with an oracle denoiser, classifier-free guidance, determinism for a seed."""

import pytest
import torch

from models.grasp_diffusion import Condition, DiffusionConfig, GraspDiffusion
from tests.grasp_factories import single_thread


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()

CONFIG = DiffusionConfig(latent_dim=6, cond_dim=8, point_widths=(8,), hidden=16, blocks=1, cond_tokens=4)


def _condition_inputs(b=3, n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, n, 3, generator=g) * 0.05, torch.rand(b, n, generator=g),
            torch.randn(b, 384, generator=g))


def test_schedule_is_linear_betas_from_1e4_to_0_02_over_1000_steps():
    model = GraspDiffusion(CONFIG)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    assert model.alpha_bar.shape == (1000,)
    assert model.alpha_bar[0].item() == pytest.approx(1 - 1e-4)
    assert model.alpha_bar[-1].item() == pytest.approx(torch.prod(1 - betas).item(), rel=1e-4)
    x0, noise, t = torch.ones(2, 6), torch.zeros(2, 6), torch.tensor([0, 999])
    torch.testing.assert_close(model.q_sample(x0, t, noise), model.alpha_bar[t].sqrt()[:, None].expand(2, 6))


def test_condition_fusion_shapes_and_checks():
    model = GraspDiffusion(CONFIG)
    cond = model.condition(*_condition_inputs())
    assert cond.vector.shape == (3, 8) and cond.tokens.shape == (3, 3 + 4, 8)
    torch.testing.assert_close(cond.vector, cond.tokens[:, :3].sum(1))  # f = f_obj + f_aff + f_txt
    points, values, text = _condition_inputs()
    with pytest.raises(ValueError, match="affordance_map"):
        model.condition(points, values[:, :5], text)
    with pytest.raises(ValueError, match="text"):
        model.condition(points, values, text[:, :10])


def test_condition_dropout_replaces_rows_with_the_null_vector():
    model = GraspDiffusion(CONFIG)
    with torch.no_grad():
        model.null.fill_(7.0)
    f = torch.randn(1000, 8)
    assert torch.equal(model.drop_condition(f, 0.0), f)
    dropped = model.drop_condition(f, 0.3)
    is_null = (dropped == 7.0).all(1)
    assert torch.equal(dropped[~is_null], f[~is_null])
    assert 0.2 < is_null.float().mean().item() < 0.4


def test_the_training_loss_applies_condition_dropout(monkeypatch):
    model = GraspDiffusion(DiffusionConfig(**{**CONFIG.__dict__, "cond_drop": 0.25}))
    seen = []
    monkeypatch.setattr(model, "drop_condition", lambda f, p: seen.append(p) or f)
    cond = model.condition(*_condition_inputs())
    loss = model.loss(torch.randn(3, 6), cond)
    assert seen == [0.25] and torch.isfinite(loss)


def test_ddim_with_an_oracle_denoiser_lands_on_x0():
    """If eps_theta returned the true noise of x_t for a fixed x0, DDIM (eta = 0) must end exactly at x0."""
    model = GraspDiffusion(DiffusionConfig(**{**CONFIG.__dict__, "x0_clip": 100.0}))
    x0 = torch.randn(3, 6)

    def oracle(x, t, f, guidance):
        a = model.alpha_bar[t][:, None]
        return (x - a.sqrt() * x0) / (1 - a).sqrt()
    model.guided_eps = oracle
    cond = Condition(torch.zeros(3, 8), torch.zeros(3, 1, 8))
    for steps in (1, 10, 50):
        out = model.sample(cond, steps=steps, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(model.normalise(out), x0, atol=1e-4, rtol=1e-4)
    assert model.ddim_timesteps(5) == [999, 749, 500, 250, 0]
    with pytest.raises(ValueError, match="ddim steps"):
        model.ddim_timesteps(0)


def test_guidance_mixes_conditional_and_unconditional_predictions():
    model = GraspDiffusion(CONFIG)
    x, t, f = torch.randn(2, 6), torch.tensor([10, 500]), torch.randn(2, 8)
    eps_c = model.denoiser(x, t, f)
    eps_u = model.denoiser(x, t, model.null.expand_as(f))
    torch.testing.assert_close(model.guided_eps(x, t, f, 1.0), eps_c)
    torch.testing.assert_close(model.guided_eps(x, t, f, 3.0), eps_u + 3.0 * (eps_c - eps_u), atol=1e-5, rtol=1e-5)


def test_sampling_is_deterministic_for_a_seed():
    model = GraspDiffusion(CONFIG).eval()
    cond = model.condition(*_condition_inputs())
    a = model.sample(cond, steps=5, generator=torch.Generator().manual_seed(3))
    b = model.sample(cond, steps=5, generator=torch.Generator().manual_seed(3))
    c = model.sample(cond, steps=5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_config_bounds_name_the_field():
    with pytest.raises(ValueError, match="cond_drop"):
        DiffusionConfig(cond_drop=1.0)
    with pytest.raises(ValueError, match="beta_start"):
        DiffusionConfig(beta_start=0.1, beta_end=0.01)
