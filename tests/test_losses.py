import math

import pytest
import torch

from lit_gan import losses

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -1.5])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_logistic_discriminator_loss_matches_hand_computation():
    # -log sigmoid(l) = softplus(-l) for real targets; -log(1 - sigmoid(l)) = softplus(l) for fake ones
    expected = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-1.5)) / 2
    assert losses.d_loss("nonsaturating", REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)
    assert losses.d_loss("minimax", REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_one_sided_label_smoothing_changes_only_real_targets():
    t = 0.9  # real target after smoothing 0.1
    real = sum(t * softplus(-l) + (1 - t) * softplus(l) for l in (2.0, -1.0)) / 2
    fake = (softplus(0.5) + softplus(-1.5)) / 2
    got = losses.d_loss("nonsaturating", REAL, FAKE, smoothing=0.1).item()
    assert got == pytest.approx(real + fake, rel=1e-6)


def test_generator_losses_match_hand_computation():
    assert losses.g_loss("nonsaturating", FAKE).item() == pytest.approx((softplus(-0.5) + softplus(1.5)) / 2, rel=1e-6)
    assert losses.g_loss("minimax", FAKE).item() == pytest.approx(-(softplus(0.5) + softplus(-1.5)) / 2, rel=1e-6)
    assert losses.g_loss("wasserstein", FAKE).item() == pytest.approx(0.5)
    assert losses.g_loss("hinge", FAKE).item() == pytest.approx(0.5)


def test_wasserstein_and_hinge_discriminator_losses():
    assert losses.d_loss("wasserstein", REAL, FAKE).item() == pytest.approx(-0.5 - 0.5)
    # relu(1-2)=0, relu(1+1)=2 -> 1.0 ; relu(1+0.5)=1.5, relu(1-1.5)=0 -> 0.75
    assert losses.d_loss("hinge", REAL, FAKE).item() == pytest.approx(1.75)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
def test_label_flip_flips_the_expected_fraction(p):
    torch.manual_seed(0)
    n = 200_000
    real = losses.discriminator_targets(n, real=True, flip=p)
    fake = losses.discriminator_targets(n, real=False, flip=p)
    assert (real == 0).float().mean().item() == pytest.approx(p, abs=0.005)
    assert (fake == 1).float().mean().item() == pytest.approx(p, abs=0.005)
    assert set(real.unique().tolist()) <= {0.0, 1.0}


def test_saturating_generator_gradient_vanishes_where_nonsaturating_does_not():
    # the reason for the non-saturating loss: when D confidently rejects G's samples
    fake = torch.tensor([-8.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(losses.g_loss("minimax", fake), fake)
    (g_ns,) = torch.autograd.grad(losses.g_loss("nonsaturating", fake), fake)
    assert abs(g_sat.item()) < 1e-3 < abs(g_ns.item())


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="unknown loss"):
        losses.g_loss("bogus", FAKE)
