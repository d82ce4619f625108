"""The Wasserstein family, ACGAN and the stabilisation options of the one loop."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from lit_gan import losses
from lit_gan.augment import diff_augment, parse_policy
from lit_gan.models import ACGAN, CWGANGP, DCGAN, GAN, WGAN, WGANGP
from lit_gan.nets.blocks import Maxout, MinibatchStd
from tests.conftest import TINY
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


def test_wgangp_reads_the_grad_scaler_under_16_mixed(trainer_kwargs):
    # Lightning turns precision="16-mixed" into bf16 on CPU; the plugin keeps fp16 + GradScaler as on GPU
    from lightning.pytorch.plugins import MixedPrecision

    scales = []

    class Probe(WGANGP):
        def on_train_batch_end(self, *args):
            scales.append(self._grad_scale())

    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    model = Probe(**TINY)
    L.Trainer(**{**trainer_kwargs, "plugins": [plugin], "limit_train_batches": 2}).fit(model, batches())
    assert scales and all(s > 1.0 for s in scales)  # a GradScaler was active and the penalty used its scale
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert Probe(**TINY)._grad_scale() == 1.0  # no trainer, no scaler


# ----- WGAN clipping, ACGAN, unrolling, EMA ---------------------------------------------
def test_weight_clipping_bounds_every_critic_weight_after_each_step(trainer_kwargs):
    bounds = []

    class Probe(WGAN):
        def after_discriminator_step(self):
            super().after_discriminator_step()
            bounds.append(max(p.abs().max().item() for p in self.discriminator.parameters()))

    model = Probe(clip_value=0.005, opt_d={"name": "rmsprop", "lr": 0.05}, **TINY)  # big steps: clipping must act
    L.Trainer(**trainer_kwargs).fit(model, batches())
    assert len(bounds) == 4 and max(bounds) <= 0.005
    assert max(bounds) == pytest.approx(0.005)  # the bound is reached, so clipping really acted


def test_acgan_class_loss_is_cross_entropy_of_logits():
    model = ACGAN(num_classes=10, **TINY)
    x, y = torch.randn(5, 1, 28, 28), torch.tensor([0, 3, 9, 9, 1])
    out = model.discriminator(x)
    assert out.shape == (5, 11)  # one real/fake logit + 10 class logits
    adversarial, class_loss = model.score(x, y)
    assert torch.equal(adversarial, out[:, 0])
    assert class_loss.item() == pytest.approx(F.cross_entropy(out[:, 1:], y).item(), rel=1e-6)
    assert not torch.allclose(out[:, 1:].exp().sum(1), torch.ones(5))  # logits, not probabilities


def test_acgan_generator_loss_includes_the_class_term():
    model = ACGAN(num_classes=10, **TINY)
    fake, y = torch.randn(4, 1, 28, 28), torch.tensor([1, 2, 3, 4])
    adversarial, class_loss = model.score(fake, y)
    expected = losses.g_loss("nonsaturating", adversarial) + class_loss
    assert model.generator_loss(fake, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_unrolled_generator_loss_leaves_the_discriminator_exactly_as_before():
    torch.manual_seed(0)
    model = DCGAN(unroll_steps=3, opt_d={"lr": 0.05}, **TINY).train()
    real, fake = torch.randn(8, 1, 28, 28), model.generate(8)
    state = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    unrolled = model._unrolled_discriminator(real, fake.detach(), None)
    loss = model.generator_loss(fake, None, real)
    loss.backward()
    assert all(torch.equal(state[k], v) for k, v in model.discriminator.state_dict().items())
    assert not all(torch.equal(unrolled[k], state[k]) for k, _ in model.discriminator.named_parameters())
    assert all(p.grad is None or not p.grad.abs().sum() for p in model.discriminator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.parameters())
    # against the plain D the loss differs: the look-ahead changes what G is trained against
    assert loss.item() != pytest.approx(DCGAN.generator_loss(model, fake, None).item())


def test_ema_weights_follow_the_decay_formula(trainer_kwargs):
    decay = 0.9
    model = DCGAN(ema_decay=decay, **TINY)
    start = params(model.generator)
    assert all(torch.equal(a, b) for a, b in zip(start, params(model.generator_ema)))
    L.Trainer(**{**trainer_kwargs, "limit_train_batches": 1}).fit(model, batches())
    for e, g0, g1 in zip(model.generator_ema.parameters(), start, model.generator.parameters()):
        torch.testing.assert_close(e, decay * g0 + (1 - decay) * g1)
    assert not all(torch.equal(a, b) for a, b in zip(start, params(model.generator)))
    model.eval()  # outside training, samples come from the EMA generator
    z = torch.randn(2, TINY["latent_dim"])
    assert torch.equal(model.generate(z=z), model.generator_ema(z))


def test_ema_is_a_copy_of_the_generator_only():
    model = DCGAN(ema_decay=0.999, **TINY)
    assert sum(p.numel() for p in model.generator_ema.parameters()) == sum(p.numel() for p in model.generator.parameters())
    assert not any(p.requires_grad for p in model.generator_ema.parameters())
    assert "generator_ema.project.0.weight" in model.state_dict()  # saved with checkpoints


# ----- maxout, minibatch std, augmentation, spectral norm ---------------------------------
def test_maxout_takes_the_max_of_its_pieces():
    layer = Maxout(3, 2, pieces=4)
    x = torch.randn(5, 3)
    pieces = layer.linear(x).view(5, 2, 4)
    assert torch.equal(layer(x), pieces.max(dim=2).values)
    assert any(isinstance(m, Maxout) for m in GAN(maxout=2, **TINY).modules())


def test_minibatch_std_feature_sees_a_collapsed_batch():
    feature = MinibatchStd()
    varied, collapsed = torch.randn(8, 4), torch.ones(8, 4)
    assert feature(varied).shape == (8, 5)
    assert feature(varied)[0, -1].item() == pytest.approx(varied.std(0, unbiased=False).mean().item(), rel=1e-5)
    assert feature(collapsed)[:, -1].abs().max() == 0
    assert DCGAN(minibatch_std=True, **TINY).discriminator(torch.randn(3, 1, 28, 28)).shape == (3,)


def test_diff_augment_applies_to_d_inputs_in_training_only():
    model = DCGAN(augment="translation,cutout,color", **TINY)
    x = torch.randn(4, 1, 28, 28)
    model.eval()
    torch.manual_seed(0)
    a, _ = model.score(x, None)
    torch.manual_seed(1)
    b, _ = model.score(x, None)
    assert torch.equal(a, b)  # eval: no augmentation, deterministic
    model.train()
    y = torch.randn(4, 1, 28, 28, requires_grad=True)
    augmented = diff_augment(y, parse_policy("translation,cutout,color"))
    assert augmented.shape == y.shape and not torch.equal(augmented, y)
    augmented.sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0  # differentiable: G still gets gradients
    with pytest.raises(ValueError, match="unknown augmentation"):
        parse_policy("translation,flip")


def test_hinge_loss_with_spectral_norm_trains(trainer_kwargs):
    model = DCGAN(loss="hinge", d_norm="spectral", **TINY)
    d0 = params(model.discriminator)
    L.Trainer(**trainer_kwargs).fit(model, batches())
    assert not all(torch.equal(a, b) for a, b in zip(d0, params(model.discriminator)))
    w = model.discriminator.features[0].weight  # the normalised weight has spectral norm ~1
    assert torch.linalg.matrix_norm(w.flatten(1), ord=2).item() == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize("cls", [WGAN, WGANGP, CWGANGP, ACGAN])
def test_variant_trains_and_moves_both_networks(trainer_kwargs, cls):
    model = cls(num_classes=10, **TINY)
    g0, d0 = params(model.generator), params(model.discriminator)
    L.Trainer(**{**trainer_kwargs, "limit_train_batches": 5}).fit(model, batches(n=5))
    assert not all(torch.equal(a, b) for a, b in zip(g0, params(model.generator)))
    assert not all(torch.equal(a, b) for a, b in zip(d0, params(model.discriminator)))


def test_variant_defaults_follow_the_papers():
    wgan, gp = WGAN(), WGANGP()
    assert (wgan.hparams.clip_value, wgan.hparams.d_steps, wgan.opt_d.name, wgan.opt_d.lr) == (0.01, 5, "rmsprop", 5e-5)
    assert (gp.hparams.gp_weight, gp.hparams.d_steps, gp.hparams.d_norm) == (10.0, 5, "none")
    assert (gp.opt_d.lr, gp.opt_d.betas) == (1e-4, (0.0, 0.9))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in gp.discriminator.modules())
    assert CWGANGP(num_classes=10).conditional and ACGAN(num_classes=10).hparams.aux_classifier


@pytest.mark.parametrize(
    "cls,kwargs,message",
    [
        (WGANGP, {"clip_value": 0.01}, "weight clipping"),
        (DCGAN, {"gp_weight": 10.0}, "batch norm in the critic"),
        (WGAN, {"d_norm": "spectral"}, "spectral normalisation already bounds"),
        (WGANGP, {"label_flip": 0.1}, "has no targets"),
        (GAN, {"loss": "hinge", "label_smoothing": 0.1}, "has no targets"),
        (ACGAN, {"num_classes": 0}, "needs labelled data"),
        (DCGAN, {"aux_classifier": True, "num_classes": 10}, "needs conditional=True"),
        (DCGAN, {"maxout": 2}, "fully connected networks"),
        (GAN, {"maxout": 1}, "at least 2"),
        (DCGAN, {"ema_decay": 1.0}, "ema_decay"),
        (DCGAN, {"augment": "rotate"}, "unknown augmentation"),
    ],
)
def test_forbidden_combinations_stop_with_a_message(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**{"num_classes": 10, **kwargs})
