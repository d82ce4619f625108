import math

import pytest
import torch

from lit_gan import losses
from lit_gan.losses import LOSSES

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -1.5])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_logistic_discriminator_loss_matches_hand_computation():
    # -log sigmoid(l) = softplus(-l) for real targets; -log(1 - sigmoid(l)) = softplus(l) for fake ones
    expected = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-1.5)) / 2
    assert LOSSES["nonsaturating"].d_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)
    assert LOSSES["minimax"].d_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_generator_losses_match_hand_computation():
    assert LOSSES["nonsaturating"].g_loss(FAKE).item() == pytest.approx((softplus(-0.5) + softplus(1.5)) / 2, rel=1e-6)
    assert LOSSES["minimax"].g_loss(FAKE).item() == pytest.approx(-(softplus(0.5) + softplus(-1.5)) / 2, rel=1e-6)
    assert LOSSES["wasserstein"].g_loss(FAKE).item() == pytest.approx(0.5)
    assert LOSSES["hinge"].g_loss(FAKE).item() == pytest.approx(0.5)


def test_wasserstein_and_hinge_discriminator_losses():
    assert LOSSES["wasserstein"].d_loss(REAL, FAKE).item() == pytest.approx(-0.5 - 0.5)
    # relu(1-2)=0, relu(1+1)=2 -> 1.0 ; relu(1+0.5)=1.5, relu(1-1.5)=0 -> 0.75
    assert LOSSES["hinge"].d_loss(REAL, FAKE).item() == pytest.approx(1.75)


def test_saturating_generator_gradient_vanishes_where_nonsaturating_does_not():
    # the reason for the non-saturating loss: when D confidently rejects G's samples
    fake = torch.tensor([-8.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(LOSSES["minimax"].g_loss(fake), fake)
    (g_ns,) = torch.autograd.grad(LOSSES["nonsaturating"].g_loss(fake), fake)
    assert abs(g_sat.item()) < 1e-3 < abs(g_ns.item())


def test_unknown_loss_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown loss 'bogus'; choose one of \['hinge', 'minimax', 'nonsaturating', 'wasserstein'\]"):
        losses.get("bogus")
    assert LOSSES["nonsaturating"].logistic and not LOSSES["hinge"].logistic and not LOSSES["hinge"].g_sees_real
