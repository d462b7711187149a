"""DAM: 1, 2 or 4 heads (others refused), identity at initialisation, shapes, gradients reach it through a
frozen decoder, and its output depends on the condition tokens."""

import pytest
import torch

from models.grasp_dam import DAM, DAMConfig
from tests.grasp_factories import single_thread


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()


def _config(heads=2):
    return DAMConfig(latent_dim=6, cond_dim=8, heads=heads, queries=2, layers=1)


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_heads_and_shapes(heads):
    dam = DAM(_config(heads))
    out = dam(torch.randn(3, 6), torch.randn(3, 5, 8))
    assert out.shape == (3, 6)


def test_other_head_counts_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="heads"):
        DAMConfig(latent_dim=6, cond_dim=12, heads=3)
    with pytest.raises(ValueError, match="cond_dim"):
        DAMConfig(latent_dim=6, cond_dim=6, heads=4)
    dam = DAM(_config())
    with pytest.raises(ValueError, match="coarse latent"):
        dam(torch.randn(3, 5), torch.randn(3, 5, 8))
    with pytest.raises(ValueError, match="tokens"):
        dam(torch.randn(3, 6), torch.randn(2, 5, 8))


def test_identity_at_init_then_learns_from_the_tokens():
    torch.manual_seed(0)
    dam = DAM(_config())
    coarse, tokens = torch.randn(4, 6), torch.randn(4, 5, 8)
    assert torch.equal(dam(coarse, tokens), coarse)
    decoder = torch.nn.Linear(6, 3).requires_grad_(False)  # a frozen decoder between the DAM and the loss
    optimiser = torch.optim.Adam(dam.parameters(), lr=3e-2)
    target = torch.randn(4, 3)
    first = None
    for _ in range(40):
        loss = (decoder(dam(coarse, tokens)) - target).square().mean()
        first = first if first is not None else loss.item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.5 * first
    assert not torch.allclose(dam(coarse, tokens), dam(coarse, torch.randn(4, 5, 8)))
