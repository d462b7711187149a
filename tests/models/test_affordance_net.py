"""AffordanceNet: shapes, text conditioning, padding, interpolation against a loop, bad input."""

import numpy as np
import pytest
import torch

from models.affordance_net import TINY, AffordanceNet, AffordanceNetConfig, interpolate, normalise_cloud


def _inputs(batch: int = 2, n: int = 128, length: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    points = torch.rand(batch, n, 3, generator=g) * 0.1
    tokens = torch.randn(batch, length, TINY.text_dim, generator=g)
    mask = torch.ones(batch, length, dtype=torch.bool)
    return points, tokens, mask


def test_logits_per_point_and_depend_on_the_text() -> None:
    torch.manual_seed(0)
    model = AffordanceNet(TINY).eval()
    points, tokens, mask = _inputs()
    logits = model(points, tokens, mask)
    assert logits.shape == (2, 128) and torch.isfinite(logits).all()
    other = model(points, tokens.flip(0), mask)
    assert not torch.allclose(logits, other)


def test_padding_tokens_are_ignored() -> None:
    torch.manual_seed(0)
    model = AffordanceNet(TINY).eval()
    points, tokens, mask = _inputs(batch=1)
    padded = torch.cat([tokens, torch.randn(1, 3, TINY.text_dim)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(1, 3, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(model(points, tokens, mask), model(points, padded, padded_mask), atol=1e-5, rtol=1e-5)


def test_maps_do_not_depend_on_position_or_scale() -> None:
    torch.manual_seed(0)
    model = AffordanceNet(TINY).eval()
    points, tokens, mask = _inputs(batch=1)
    moved = points * 3.0 + torch.tensor([0.5, -1.0, 2.0])
    torch.testing.assert_close(model(points, tokens, mask), model(moved, tokens, mask), atol=1e-4, rtol=1e-4)


def test_interpolate_matches_a_loop() -> None:
    rng = np.random.default_rng(0)
    points, centres, feats = rng.random((1, 20, 3)), rng.random((1, 6, 3)), rng.random((1, 6, 4))
    got = interpolate(*(torch.tensor(a) for a in (points, centres, feats))).numpy()
    for i, p in enumerate(points[0]):
        d = np.linalg.norm(centres[0] - p, axis=1)
        near = np.argsort(d)[:3]
        w = 1 / d[near]
        np.testing.assert_allclose(got[0, i], (feats[0, near] * (w / w.sum())[:, None]).sum(0), rtol=1e-10)


def test_normalised_cloud_is_centred_in_the_unit_ball() -> None:
    cloud = normalise_cloud(torch.rand(3, 50, 3) * 7 + 2)
    torch.testing.assert_close(cloud.mean(1), torch.zeros(3, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(cloud.norm(dim=-1).amax(1), torch.ones(3))


@pytest.mark.parametrize(("change", "message"), [
    (lambda p, t, m: (p[:, :8], t, m), "points must be"),
    (lambda p, t, m: (p.masked_fill(torch.zeros_like(p, dtype=torch.bool).index_fill(1, torch.tensor([0]), True),
                                    float("nan")), t, m), "NaN"),
    (lambda p, t, m: (p, t[..., :10], m), "text_tokens must be"),
    (lambda p, t, m: (p, t, m.float()), "text_mask must be bool"),
    (lambda p, t, m: (p, t, torch.zeros_like(m)), "at least one real token"),
])
def test_bad_input_is_refused_by_name(change, message: str) -> None:
    model = AffordanceNet(TINY)
    with pytest.raises(ValueError, match=message):
        model(*change(*_inputs()))


def test_config_bounds() -> None:
    with pytest.raises(ValueError, match="num_heads=3 must divide trans_dim"):
        AffordanceNetConfig(num_heads=3)
    with pytest.raises(ValueError, match="depth must be a positive int"):
        AffordanceNetConfig(depth=0)
