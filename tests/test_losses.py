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
    assert LOSSES["nonsaturating"]().d_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)
    assert LOSSES["minimax"]().d_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_generator_losses_match_hand_computation():
    assert LOSSES["nonsaturating"]().g_loss(FAKE).item() == pytest.approx((softplus(-0.5) + softplus(1.5)) / 2, rel=1e-6)
    assert LOSSES["minimax"]().g_loss(FAKE).item() == pytest.approx(-(softplus(0.5) + softplus(-1.5)) / 2, rel=1e-6)
    assert LOSSES["wasserstein"]().g_loss(FAKE).item() == pytest.approx(0.5)
    assert LOSSES["hinge"]().g_loss(FAKE).item() == pytest.approx(0.5)


def test_wasserstein_and_hinge_discriminator_losses():
    assert LOSSES["wasserstein"]().d_loss(REAL, FAKE).item() == pytest.approx(-0.5 - 0.5)
    # relu(1-2)=0, relu(1+1)=2 -> 1.0 ; relu(1+0.5)=1.5, relu(1-1.5)=0 -> 0.75
    assert LOSSES["hinge"]().d_loss(REAL, FAKE).item() == pytest.approx(1.75)


def test_saturating_generator_gradient_vanishes_where_nonsaturating_does_not():
    # the reason for the non-saturating loss: when D confidently rejects G's samples
    fake = torch.tensor([-8.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(LOSSES["minimax"]().g_loss(fake), fake)
    (g_ns,) = torch.autograd.grad(LOSSES["nonsaturating"]().g_loss(fake), fake)
    assert abs(g_sat.item()) < 1e-3 < abs(g_ns.item())


def test_hinge_margin_is_an_argument():
    # margin 2: relu(2-2)=0, relu(2+1)=3 -> 1.5 ; relu(2+0.5)=2.5, relu(2-1.5)=0.5 -> 1.5
    assert losses.build({"hinge": {"margin": 2.0}}).d_loss(REAL, FAKE).item() == pytest.approx(3.0)
    assert losses.build({"hinge": None}).d_loss(REAL, FAKE).item() == pytest.approx(1.75)  # the papers' margin 1


def test_losses_are_built_by_name_and_an_unknown_one_is_rejected_with_the_choices():
    assert isinstance(losses.build("hinge"), losses.Hinge) and losses.build("hinge").name == "hinge"
    with pytest.raises(ValueError, match=r"unknown loss 'bogus'; choose from \['hinge', 'minimax', 'nonsaturating', 'rpgan', 'wasserstein'\]"):
        losses.build("bogus")
    with pytest.raises(ValueError, match="loss 'wasserstein' takes no arguments"):
        losses.build({"wasserstein": {"margin": 1.0}})
    with pytest.raises(ValueError, match="names one loss"):
        losses.build({"hinge": {}, "wasserstein": {}})
    assert LOSSES["nonsaturating"]().logistic and not LOSSES["hinge"]().logistic and not LOSSES["hinge"]().g_sees_real


# ----- relativistic pairing (RpGAN) -------------------------------------------------------
def test_rpgan_pairs_real_and_fake_by_batch_index():
    rp = LOSSES["rpgan"]()
    # pairs (2, 0.5) and (-1, -1.5): D pays softplus(f - r), G pays softplus(r - f)
    assert rp.d_loss(REAL, FAKE).item() == pytest.approx((softplus(-1.5) + softplus(-0.5)) / 2, rel=1e-6)
    assert rp.g_loss(FAKE, REAL).item() == pytest.approx((softplus(1.5) + softplus(0.5)) / 2, rel=1e-6)
    # other pairs, other loss: not a function of the two means
    assert rp.d_loss(REAL, FAKE.flip(0)).item() == pytest.approx((softplus(-3.5) + softplus(1.5)) / 2, rel=1e-6)
    assert rp.g_sees_real and not rp.logistic  # the loop scores reals for G; scores are not P(real)
    with pytest.raises(ValueError, match="needs D's scores on the real batch"):
        rp.g_loss(FAKE)


def test_rpgan_signs_d_wants_reals_above_fakes_and_g_the_reverse():
    rp = LOSSES["rpgan"]()
    real, fake = torch.zeros(4, requires_grad=True), torch.zeros(4, requires_grad=True)
    d_grad_real, d_grad_fake = torch.autograd.grad(rp.d_loss(real, fake), (real, fake))
    assert (d_grad_real < 0).all() and (d_grad_fake > 0).all()  # D lowers its loss by scoring reals up, fakes down
    (g_grad_fake,) = torch.autograd.grad(rp.g_loss(fake, real), fake)
    assert (g_grad_fake < 0).all()  # G lowers its loss by raising D's score of its samples
    margins = [rp.d_loss(torch.full((4,), m), torch.zeros(4)).item() for m in (-2.0, 0.0, 2.0, 5.0)]
    assert margins == sorted(margins, reverse=True) and margins[-1] < 0.01  # falls as reals outscore fakes
    g = [rp.g_loss(torch.full((4,), m), torch.zeros(4)).item() for m in (-2.0, 0.0, 2.0)]
    assert g == sorted(g, reverse=True)  # and G's falls as fakes outscore reals
    assert rp.d_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(math.log(2))
