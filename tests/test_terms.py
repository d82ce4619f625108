"""The objective's terms: each hook does what its paper says, and new ones plug in by name."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from lit_gan import losses, terms
from lit_gan.models import ACGAN, DCGAN, WGAN, WGANGP
from lit_gan.terms import Step, Term, discriminator_targets
from tests.conftest import tiny
from tests.models.test_base import batches, params


# ----- gradient penalty ----------------------------------------------------------------
def linear_critic(w: torch.Tensor):
    return lambda x: x.flatten(1) @ w  # gradient w.r.t. every x is w, its norm is ||w||


def test_gradient_penalty_of_a_linear_critic_is_known():
    w = torch.zeros(2 * 3 * 3)
    w[0], w[1] = 3.0, 4.0  # ||w|| = 5 -> (5 - 1)^2 = 16
    real, fake = torch.randn(6, 2, 3, 3), torch.randn(6, 2, 3, 3)
    assert losses.gradient_penalty(linear_critic(w), real, fake).item() == pytest.approx(16.0)
    unit = torch.zeros_like(w)
    unit[5] = 1.0
    assert losses.gradient_penalty(linear_critic(unit), real, fake).item() == pytest.approx(0.0, abs=1e-12)


def test_gradient_penalty_norm_is_per_sample_over_all_non_batch_dims():
    # critic x -> sum(x^2): gradient 2x, its norm differs per sample; the penalty must average
    # (||2 x_hat_i|| - 1)^2 over samples, with x_hat on the segment between real_i and fake_i
    real = torch.zeros(4, 1, 2, 2)
    fake = torch.zeros(4, 1, 2, 2)
    fake[:, 0, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    torch.manual_seed(0)
    got = losses.gradient_penalty(lambda x: (x**2).flatten(1).sum(1), real, fake)
    torch.manual_seed(0)
    eps = torch.rand(4, 1, 1, 1)
    x_hat = (1 - eps) * fake
    expected = ((2 * x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def small_critic():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, 2, 1), torch.nn.LeakyReLU(0.2), torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 1))


def penalty(critic, real, fake, **kwargs):
    torch.manual_seed(2)
    return losses.gradient_penalty(lambda x: critic(x).squeeze(1), real, fake, **kwargs)


def test_gradient_penalty_under_bf16_autocast_matches_fp32():
    critic, real, fake = small_critic(), torch.randn(16, 1, 28, 28), torch.randn(16, 1, 28, 28)
    fp32 = penalty(critic, real, fake)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = penalty(critic, real, fake)
    assert bf16.dtype == torch.float32
    assert bf16.item() == pytest.approx(fp32.item(), rel=0.05)


def test_gradient_penalty_unscales_a_grad_scaler_scale():
    critic, real, fake = small_critic(), torch.randn(8, 1, 28, 28), torch.randn(8, 1, 28, 28)
    assert penalty(critic, real, fake, scale=65536.0).item() == pytest.approx(penalty(critic, real, fake).item(), rel=1e-5)


def test_gradient_penalty_term_is_weighted_and_off_without_grad():
    model = tiny(WGANGP, terms={"gradient_penalty": {"weight": 3.0}})
    real, fake = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    torch.manual_seed(0)
    _, logs = model.discriminator_loss(real, fake, None)
    torch.manual_seed(0)
    raw = losses.gradient_penalty(lambda x: model.discriminator(x), real, fake)
    assert logs["gradient_penalty"].item() == pytest.approx(3.0 * raw.item(), rel=1e-5)
    with torch.no_grad():
        assert "gradient_penalty" not in model.discriminator_loss(real, fake, None)[1]  # validation


def test_wgangp_reads_the_grad_scaler_under_16_mixed(trainer_kwargs):
    # Lightning turns precision="16-mixed" into bf16 on CPU; the plugin keeps fp16 + GradScaler as on GPU
    from lightning.pytorch.plugins import MixedPrecision

    scales = []

    class Probe(WGANGP):
        def on_train_batch_end(self, *args):
            scales.append(self.grad_scale())

    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    model = tiny(Probe)
    L.Trainer(**{**trainer_kwargs, "plugins": [plugin], "limit_train_batches": 2}).fit(model, batches())
    assert scales and all(s > 1.0 for s in scales)  # a GradScaler was active and the penalty used its scale
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert tiny(Probe).grad_scale() == 1.0  # no trainer, no scaler


# ----- weight clipping, auxiliary classifier, unrolled D, label noise ---------------------
def test_weight_clipping_bounds_every_critic_weight_after_each_step(trainer_kwargs):
    bounds = []

    class Probe(terms.WeightClipping):
        def after_d_step(self, model):
            super().after_d_step(model)
            bounds.append(max(p.abs().max().item() for p in model.discriminator.parameters()))

    model = tiny(WGAN, opt_d={"name": "rmsprop", "lr": 0.05})  # big steps: clipping must act
    model.terms = [Probe(0.005)]
    L.Trainer(**trainer_kwargs).fit(model, batches())
    assert len(bounds) == 4 and max(bounds) <= 0.005
    assert max(bounds) == pytest.approx(0.005)  # the bound is reached, so clipping really acted


def test_aux_classifier_is_cross_entropy_of_logits_in_d_and_g():
    model = tiny(ACGAN, num_classes=10)
    x, fake, y = torch.randn(5, 1, 28, 28), torch.randn(5, 1, 28, 28), torch.tensor([0, 3, 9, 9, 1])
    out = model.discriminator(x)
    assert out.shape == (5, 11)  # one real/fake logit + 10 class logits, D not told the label
    judged = model.judge(x, y)
    assert torch.equal(judged.logits, out[:, 0]) and torch.equal(judged.classes, out[:, 1:])
    assert not torch.allclose(out[:, 1:].exp().sum(1), torch.ones(5))  # logits, not probabilities
    ce = lambda images: F.cross_entropy(model.discriminator(images)[:, 1:], y).item()  # noqa: E731
    _, logs = model.discriminator_loss(x, fake, y)
    assert logs["aux_classifier"].item() == pytest.approx(ce(x) + ce(fake), rel=1e-5)
    adversarial = losses.get("nonsaturating").g_loss(model.discriminator(fake)[:, 0])
    assert model.generator_loss(x, fake, y).item() == pytest.approx(adversarial.item() + ce(fake), rel=1e-5)


def test_unrolled_opponent_looks_ahead_and_leaves_the_discriminator_exactly_as_before():
    torch.manual_seed(0)
    model = tiny(DCGAN, terms={"unrolled": {"steps": 3}}, opt_d={"lr": 0.05}).train()
    real, fake = torch.randn(8, 1, 28, 28), model.generate(8)
    state = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    ahead = model.terms[0].opponent(model, real, fake, None)
    assert not all(torch.equal(a, b) for a, b in zip(ahead.parameters(), model.discriminator.parameters()))
    loss = model.generator_loss(real, fake, None)
    loss.backward()
    assert all(torch.equal(state[k], v) for k, v in model.discriminator.state_dict().items())
    assert all(p.grad is None or not p.grad.abs().sum() for p in model.discriminator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.parameters())
    plain = losses.get("nonsaturating").g_loss(model.judge(fake, None).logits)
    assert loss.item() != pytest.approx(plain.item())  # the look-ahead changes what G is trained against
    with torch.no_grad():  # validation: G's loss against the current D
        assert model.terms[0].opponent(model, real, fake, None) is None
        assert model.generator_loss(real, fake.detach(), None).item() == pytest.approx(plain.item(), rel=1e-5)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
def test_label_flip_flips_the_expected_fraction(p):
    torch.manual_seed(0)
    n = 200_000
    real = discriminator_targets(n, real=True, flip=p)
    fake = discriminator_targets(n, real=False, flip=p)
    assert (real == 0).float().mean().item() == pytest.approx(p, abs=0.005)
    assert (fake == 1).float().mean().item() == pytest.approx(p, abs=0.005)
    assert set(real.unique().tolist()) <= {0.0, 1.0}


def test_label_noise_term_equals_bce_with_the_noisy_targets():
    model = tiny(DCGAN, terms={"label_noise": {"flip": 0.3, "smoothing": 0.1}})
    real, fake = torch.randn(64, 1, 28, 28), torch.randn(64, 1, 28, 28)
    model.eval()  # batch norm in eval mode: the same logits in both computations
    torch.manual_seed(0)
    loss, _ = model.discriminator_loss(real, fake, None)
    torch.manual_seed(0)
    t_real, t_fake = discriminator_targets(64, True, 0.3, 0.1), discriminator_targets(64, False, 0.3, 0.1)
    s_real, s_fake = model.discriminator(real), model.discriminator(fake)
    expected = F.binary_cross_entropy_with_logits(s_real, t_real) + F.binary_cross_entropy_with_logits(s_fake, t_fake)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not torch.equal(t_real, torch.ones(64))  # the noise really changed targets


# ----- extending: a new loss and a new regularizer, each one class + one registry line ------
class LeastSquares(losses.AdversarialLoss):
    """LSGAN (Mao et al. 2017): D regresses real to 1 and fake to 0, G pulls its samples to 1."""

    def d_loss(self, real, fake):
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()

    def g_loss(self, fake, real=None):
        return 0.5 * ((fake - 1) ** 2).mean()


class R1(Term):
    """Zero-centred gradient penalty on real data (Mescheder et al. 2018): gamma/2 E||grad D(x)||^2."""

    def __init__(self, gamma: float = 1.0) -> None:
        self.gamma = gamma

    def d_loss(self, step: Step):
        if not torch.is_grad_enabled():
            return None
        x = step.real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(step.judge(x).logits.sum(), x, create_graph=True)
        return self.gamma / 2 * grad.flatten(1).pow(2).sum(1).mean()


def test_a_new_loss_and_a_new_regularizer_plug_in_by_name(monkeypatch, trainer_kwargs):
    monkeypatch.setitem(losses.LOSSES, "least_squares", LeastSquares())
    monkeypatch.setitem(terms.TERMS, "r1", R1)
    model = tiny(WGANGP, loss="least_squares", terms={"r1": {"gamma": 5.0}}, d_steps=1)
    real, fake = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    loss, logs = model.discriminator_loss(real, fake, None)
    s_real, s_fake = model.discriminator(real), model.discriminator(fake)
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.discriminator(x).sum(), x)
    r1 = 2.5 * grad.flatten(1).pow(2).sum(1).mean()
    assert logs["r1"].item() == pytest.approx(r1.item(), rel=1e-5)
    assert loss.item() == pytest.approx(LeastSquares().d_loss(s_real, s_fake).item() + r1.item(), rel=1e-5)
    d0 = params(model.discriminator)
    L.Trainer(**trainer_kwargs).fit(model, batches())
    assert not all(torch.equal(a, b) for a, b in zip(d0, params(model.discriminator)))
    assert model.hparams.terms == {"r1": {"gamma": 5.0}} and model.hparams.loss == "least_squares"
