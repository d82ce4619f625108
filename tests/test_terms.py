"""The objective's terms: each hook does what its paper says, and new ones plug in by name."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from lit_gan import losses, terms
from lit_gan.models import ACGAN, DCGAN, GAN, R3GAN, WGAN, WGANGP
from lit_gan.objective import Step, Term
from lit_gan.terms import discriminator_targets
from tests.conftest import steps, tiny
from tests.models.test_base import batches, params


R3GAN_OPTIONS = {"objective": {  # every new option at once: lazy R1, R2, ADA (the EMA ramp-up is R3GAN's default)
    "loss": "rpgan",
    "terms": {"r1": {"gamma": 1.0, "every": 2}, "r2": {"gamma": 1.0}, "ada": {"interval": 1, "ramp_images": 64}},
    "augment": "translation,cutout,color",
}}


def d_loss(model, real, fake, labels=None, phase="d", index=None):
    """D's loss and readouts as the loop computes them (phase "d": D's update, "val": validation)."""
    return model.objective.d_loss(model.step(phase, real, fake, labels, index=index))


def g_loss(model, real, fake, labels=None, phase="g"):
    """G's loss as the loop computes it: against the opponent a term gives (unrolled), else D."""
    step = model.step(phase, real, fake, labels)
    step.discriminator = model.objective.opponent(step) or step.discriminator
    return model.objective.g_loss(step)


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


def zero_centred(critic, real, fake, **kwargs):
    return losses.zero_centred_penalty(lambda x: critic(x).squeeze(1), real, **kwargs)


@pytest.mark.parametrize("penalty", [penalty, zero_centred], ids=["gradient_penalty", "zero_centred"])
def test_penalties_under_bf16_autocast_match_fp32(penalty):
    critic, real, fake = small_critic(), torch.randn(16, 1, 28, 28), torch.randn(16, 1, 28, 28)
    fp32 = penalty(critic, real, fake)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = penalty(critic, real, fake)
    assert bf16.dtype == torch.float32
    assert bf16.item() == pytest.approx(fp32.item(), rel=0.05)


@pytest.mark.parametrize("penalty", [penalty, zero_centred], ids=["gradient_penalty", "zero_centred"])
def test_penalties_unscale_a_grad_scaler_scale(penalty):
    critic, real, fake = small_critic(), torch.randn(8, 1, 28, 28), torch.randn(8, 1, 28, 28)
    assert penalty(critic, real, fake, scale=65536.0).item() == pytest.approx(penalty(critic, real, fake).item(), rel=1e-5)


def test_gradient_penalty_term_is_weighted_and_off_in_validation():
    model = tiny(WGANGP, objective={"loss": "wasserstein", "terms": {"gradient_penalty": {"weight": 3.0}}})
    real, fake = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    torch.manual_seed(0)
    _, logs = d_loss(model, real, fake)
    torch.manual_seed(0)
    raw = losses.gradient_penalty(lambda x: model.discriminator(x), real, fake)
    assert logs["gradient_penalty"].item() == pytest.approx(3.0 * raw.item(), rel=1e-5)
    assert "gradient_penalty" not in d_loss(model, real, fake, phase="val")[1]  # validation


@pytest.mark.parametrize("variant,options", [(WGANGP, {}), (R3GAN, R3GAN_OPTIONS)], ids=["WGANGP", "R3GAN"])
def test_penalties_read_the_grad_scaler_under_16_mixed(trainer_kwargs, variant, options):
    # Lightning turns precision="16-mixed" into bf16 on CPU; the plugin keeps fp16 + GradScaler as on GPU
    from lightning.pytorch.plugins import MixedPrecision

    scales = []

    class Probe(variant):
        def on_train_batch_end(self, *args):
            scales.append(float(self.grad_scale()))

    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    model = tiny(Probe, **options)
    L.Trainer(**{**trainer_kwargs, "plugins": [plugin], "limit_train_batches": 2}).fit(model, batches())
    assert scales and all(s > 1.0 for s in scales)  # a GradScaler was active and the penalty used its scale
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert tiny(Probe).grad_scale() == 1.0  # no trainer, no scaler


# ----- R1, R2 (zero-centred penalties) and ADA --------------------------------------------
def nonlinear_r3gan(terms, **kwargs):
    """A tiny R3GAN (RpGAN with `terms`) in float64 whose residual branches are switched on (they start as zeros)."""
    torch.manual_seed(0)
    model = tiny(R3GAN, objective={"loss": "rpgan", "terms": terms}, **kwargs).double()
    for p in model.discriminator.parameters():
        if not p.abs().sum():
            torch.nn.init.normal_(p, 0.0, 0.3)
    return model


def squared_gradient_norms_by_finite_differences(d, x, h=1e-6):
    """||grad_x D(x_i)||^2 per sample by central differences along every input coordinate."""
    norms = []
    for xi in x:
        basis = torch.eye(xi.numel(), dtype=x.dtype).view(-1, *xi.shape) * h
        with torch.no_grad():
            slopes = (d(xi + basis) - d(xi - basis)) / (2 * h)
        norms.append(slopes.pow(2).sum())
    return torch.stack(norms)


def test_r1_and_r2_match_a_finite_difference_check_of_the_gradient_norm():
    model = nonlinear_r3gan({"r1": {"gamma": 3.0}, "r2": {"gamma": 0.5}}, image_shape=(2, 8, 8))
    real, fake = torch.randn(3, 2, 8, 8, dtype=torch.float64), torch.randn(3, 2, 8, 8, dtype=torch.float64)
    _, logs = d_loss(model, real, fake)
    r1 = squared_gradient_norms_by_finite_differences(model.discriminator, real).mean()
    r2 = squared_gradient_norms_by_finite_differences(model.discriminator, fake).mean()
    assert logs["r1"].item() == pytest.approx(3.0 / 2 * r1.item(), rel=1e-5)
    assert logs["r2"].item() == pytest.approx(0.5 / 2 * r2.item(), rel=1e-5)
    assert r1.item() != pytest.approx(r2.item(), rel=1e-2)  # D is not linear: the points matter
    assert not {"r1", "r2"} & set(d_loss(model, real, fake, phase="val")[1])  # validation: no penalty


def test_r1_trains_d_towards_a_flat_gradient_at_the_reals():
    model = nonlinear_r3gan({"r1": {"gamma": 10.0}})
    real = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    step = model.step("d", real, real, None)
    step.real_out = step.fake_out = step.judge(real)
    r1 = model.objective.terms[0].d_loss(step)
    (grad,) = torch.autograd.grad(r1, model.discriminator.features[1].branch[0].weight)
    assert grad.abs().sum() > 0  # the penalty has a graph into D's weights: it is a loss D minimises


@pytest.mark.parametrize("every", [1, 3])
def test_lazy_penalty_applies_every_k_d_steps_with_k_times_the_weight(every):
    model = nonlinear_r3gan({"r1": {"gamma": 2.0, "every": every}})
    real, fake = torch.randn(2, 1, 28, 28, dtype=torch.float64), torch.randn(2, 1, 28, 28, dtype=torch.float64)
    full = losses.zero_centred_penalty(model.discriminator, real).item()
    applied = {}
    for batches_seen in range(7):  # the batch whose D step this is: batches_seen + 1 (1-based)
        model.batches_seen = batches_seen
        _, logs = d_loss(model, real, fake)
        if "r1" in logs:
            applied[batches_seen + 1] = logs["r1"].item()
    assert sorted(applied) == list(range(every, 8, every))  # batches k, 2k, ...
    assert all(v == pytest.approx(every * 2.0 / 2 * full, rel=1e-6) for v in applied.values())
    assert all("r1" not in d_loss(model, real, fake, phase="val", index=i)[1] for i in (3, 6))  # validation: never


def test_lazy_penalty_counts_d_steps_of_a_real_fit(trainer_kwargs):
    calls = []

    class Counting(terms.R1):
        def d_loss(self, step):
            part = super().d_loss(step)
            calls.append((step.phase, step.index, part is not None))
            return part

    model = tiny(R3GAN, objective={"loss": "rpgan", "terms": {}})
    model.objective.terms = [Counting(gamma=1.0)]
    model.objective.terms[0].name, model.objective.terms[0].every = "r1", 2
    L.Trainer(**{**trainer_kwargs, "limit_train_batches": 5}).fit(model, batches(n=5), batches(n=1))
    # the term is asked on the 2nd and 4th batch only (lazy: the objective skips the others)
    assert [c for c in calls if c[0] == "d"] == [("d", 2, True), ("d", 4, True)]
    val = [c for c in calls if c[0] != "d"]
    assert val and all(phase == "val" and not applied for phase, _, applied in val)  # validation, without the penalty


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"r1": {"gamma": 0}}, "r1 gamma must be > 0"),
        ({"r2": {"every": 0}}, "r2 every must be an integer >= 1"),
        ({"r1": {"every": 2.5}}, "r1 every must be an integer >= 1"),
        ({"r1": {"gamma": 1, "evry": 2}}, "term 'r1' takes gamma"),
        ({"ada": {"target": 1.5}}, "ada target"),
        ({"ada": {"ramp_images": 0}}, "ada ramp_images must be > 0"),
        ({"ada": {"p": 2}}, "ada p is a probability"),
    ],
)
def test_bad_penalty_and_ada_settings_are_explained(spec, message):
    with pytest.raises(ValueError, match=message):
        terms.build(spec)


def test_r1_r2_refuse_batch_norm_and_ada_needs_a_policy():
    for name in ("r1", "r2"):
        with pytest.raises(ValueError, match=f"batch norm in the critic breaks the per-sample {name} penalty"):
            tiny(DCGAN, objective={"terms": {name: {}}})
    with pytest.raises(ValueError, match="ada adapts how often the augment policy applies"):
        tiny(R3GAN, objective={"loss": "rpgan", "terms": {"ada": {}}})


class ConstantCritic(torch.nn.Module):
    """Scores every image `score`; under RpGAN its one parameter gets no gradient (real - fake cancels)."""

    def __init__(self, score: float) -> None:
        super().__init__()
        self.score = torch.nn.Parameter(torch.tensor(score))

    def forward(self, x, labels=None):
        return self.score + 0 * x.flatten(1).sum(1)


def ada_model(score: float, **ada):
    model = tiny(R3GAN, objective={"loss": "rpgan", "terms": {"ada": {"interval": 2, "ramp_images": 80, **ada}}, "augment": "translation"})
    model.discriminator = ConstantCritic(score)
    return model


class Record(L.Callback):
    def __init__(self):
        self.p = []

    def on_train_batch_end(self, trainer, model, *args):
        self.p.append(model.objective.augment_p)


@pytest.mark.parametrize("score,start,expected", [(5.0, 0.0, [0.0, 0.2, 0.2, 0.4]), (-5.0, 0.5, [0.5, 0.3, 0.3, 0.1]),
                                                  (-5.0, 0.1, [0.1, 0.0, 0.0, 0.0])])
def test_ada_raises_p_when_d_scores_reals_as_real_and_lowers_it_otherwise(trainer_kwargs, score, start, expected):
    # D scores every real +5 (overfitting: E[sign D(real)] = 1 > 0.6) or -5 (= -1 < 0.6); every 2 D steps
    # of 8 images p moves by 16 / 80 = 0.2, clamped to [0, 1]
    model, record = ada_model(score, p=start), Record()
    L.Trainer(**{**trainer_kwargs, "callbacks": [record]}).fit(model, batches())
    assert record.p == pytest.approx(expected)
    assert model.trainer.callback_metrics["train/ada_p"].item() == pytest.approx(expected[-1])


def test_ada_probability_reaches_the_augmentation_of_reals_and_fakes_alike():
    model = tiny(R3GAN, objective={"loss": "rpgan", "terms": {"ada": {}}, "augment": "translation"}).train()
    x = torch.randn(6, 1, 28, 28)
    plain = model.discriminator(x)
    step = model.step("d", x, x, None)
    assert model.objective.augment_p == 0.0 and torch.equal(step.judge(x).logits, plain)  # p = 0: untouched
    model.objective.terms[0].augment_p = 1.0
    assert not torch.equal(step.judge(x).logits, plain)  # every image D sees goes through judge


def test_ada_state_survives_a_checkpoint_and_a_resume_is_exact(trainer_kwargs, tmp_path):
    def fit(model, epochs, ckpt_path=None):
        trainer = L.Trainer(**{**trainer_kwargs, "max_epochs": epochs, "limit_train_batches": 2})
        trainer.fit(model, batches(n=2), ckpt_path=ckpt_path)
        return trainer

    ada = {"ada": {"interval": 3, "ramp_images": 500, "p": 0.5}}
    make = lambda: tiny(R3GAN, objective={"loss": "rpgan", "terms": ada, "augment": "translation,cutout"})  # noqa: E731
    torch.manual_seed(0)
    straight = make()
    fit(straight, 2)  # adjusts once, at batch 3, from the signs of batches 1 to 3
    torch.manual_seed(0)
    split = make()
    fit(split, 1).save_checkpoint(tmp_path / "half.ckpt")  # two batches' signs pending
    resumed = make()
    fit(resumed, 2, ckpt_path=tmp_path / "half.ckpt")
    p = straight.objective.augment_p
    assert resumed.objective.augment_p == p and abs(p - 0.5) == pytest.approx(24 / 500)  # 3 batches of 8
    assert resumed.objective.terms[0].state_dict() == straight.objective.terms[0].state_dict()
    loaded = R3GAN.load_from_checkpoint(tmp_path / "half.ckpt").objective.terms[0].state_dict()
    assert loaded == split.objective.terms[0].state_dict() and loaded["images"] == 16
    weights = lambda m: m.state_dict().items()  # noqa: E731
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(weights(resumed), weights(straight)))  # the whole run, not just ADA


# ----- weight clipping, auxiliary classifier, unrolled D, label noise ---------------------
def test_weight_clipping_bounds_every_critic_weight_after_each_step(trainer_kwargs):
    bounds = []

    class Probe(terms.WeightClipping):
        def after_d_step(self, step):
            super().after_d_step(step)
            bounds.append(max(p.abs().max().item() for p in step.discriminator.parameters()))

    model = tiny(WGAN, opt_d={"name": "rmsprop", "lr": 0.05, "steps": 5})  # big steps: clipping must act
    model.objective.terms = [Probe(0.005)]
    model.objective.terms[0].name = "weight_clipping"
    L.Trainer(**trainer_kwargs).fit(model, batches())
    assert len(bounds) == 4 and max(bounds) <= 0.005
    assert max(bounds) == pytest.approx(0.005)  # the bound is reached, so clipping really acted


def test_aux_classifier_is_cross_entropy_of_logits_in_d_and_g():
    model = tiny(ACGAN, num_classes=10)
    x, fake, y = torch.randn(5, 1, 28, 28), torch.randn(5, 1, 28, 28), torch.tensor([0, 3, 9, 9, 1])
    out = model.discriminator(x)
    assert out.shape == (5, 11)  # one real/fake logit + 10 class logits, D not told the label
    judged = model.objective.judge(x, y, model.discriminator)
    assert torch.equal(judged.logits, out[:, 0]) and torch.equal(judged.classes, out[:, 1:])
    assert not torch.allclose(out[:, 1:].exp().sum(1), torch.ones(5))  # logits, not probabilities
    ce = lambda images: F.cross_entropy(model.discriminator(images)[:, 1:], y).item()  # noqa: E731
    _, logs = d_loss(model, x, fake, y)
    assert logs["aux_classifier"].item() == pytest.approx(ce(x) + ce(fake), rel=1e-5)
    adversarial = losses.build("nonsaturating").g_loss(model.discriminator(fake)[:, 0])
    assert g_loss(model, x, fake, y).item() == pytest.approx(adversarial.item() + ce(fake), rel=1e-5)


def test_unrolled_opponent_looks_ahead_and_leaves_the_discriminator_exactly_as_before():
    torch.manual_seed(0)
    model = tiny(DCGAN, objective={"terms": {"unrolled": {"steps": 3}}}, opt_d={"lr": 0.05}).train()
    real, fake = torch.randn(8, 1, 28, 28), model.generate(8)
    state = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    ahead = model.objective.terms[0].opponent(model.step("g", real, fake, None))
    assert not all(torch.equal(a, b) for a, b in zip(ahead.parameters(), model.discriminator.parameters()))
    loss = g_loss(model, real, fake)
    loss.backward()
    assert all(torch.equal(state[k], v) for k, v in model.discriminator.state_dict().items())
    assert all(p.grad is None or not p.grad.abs().sum() for p in model.discriminator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.parameters())
    plain = losses.build("nonsaturating").g_loss(model.objective.judge(fake, None, model.discriminator).logits)
    assert loss.item() != pytest.approx(plain.item())  # the look-ahead changes what G is trained against
    # validation: G's loss against the current D
    assert model.objective.terms[0].opponent(model.step("val", real, fake, None)) is None
    assert g_loss(model, real, fake.detach(), phase="val").item() == pytest.approx(plain.item(), rel=1e-5)


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
    model = tiny(DCGAN, objective={"terms": {"label_noise": {"flip": 0.3, "smoothing": 0.1}}})
    real, fake = torch.randn(64, 1, 28, 28), torch.randn(64, 1, 28, 28)
    model.eval()  # batch norm in eval mode: the same logits in both computations
    torch.manual_seed(0)
    loss, _ = d_loss(model, real, fake)
    torch.manual_seed(0)
    t_real, t_fake = discriminator_targets(64, True, 0.3, 0.1), discriminator_targets(64, False, 0.3, 0.1)
    s_real, s_fake = model.discriminator(real), model.discriminator(fake)
    expected = F.binary_cross_entropy_with_logits(s_real, t_real) + F.binary_cross_entropy_with_logits(s_fake, t_fake)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not torch.equal(t_real, torch.ones(64))  # the noise really changed targets


# ----- extending: a new loss and a new regularizer, each one class + one registry line ------
class LeastSquares(losses.AdversarialLoss):
    """LSGAN (Mao et al. 2017): D regresses real to `target` (1) and fake to 0, G pulls its samples to `target`."""

    def __init__(self, target: float = 1.0) -> None:
        self.target = target

    def d_loss(self, real, fake):
        return 0.5 * ((real - self.target) ** 2).mean() + 0.5 * (fake**2).mean()

    def g_loss(self, fake, real=None):
        return 0.5 * ((fake - self.target) ** 2).mean()


class Drift(Term):
    """Progressive GAN's drift penalty (Karras et al. 2018): eps * E[D(x_real)^2] keeps D's scores near 0."""

    def __init__(self, eps: float = 1e-3) -> None:
        self.eps = eps

    def d_loss(self, step: Step):
        assert step.real_out is not None
        return self.eps * step.real_out.logits.pow(2).mean()


def test_a_new_loss_and_a_new_regularizer_plug_in_by_name(monkeypatch, trainer_kwargs):
    monkeypatch.setitem(losses.LOSSES, "least_squares", LeastSquares)
    monkeypatch.setitem(terms.TERMS, "drift", Drift)
    model = tiny(WGANGP, objective={"loss": "least_squares", "terms": {"drift": {"eps": 5.0}}}, **steps(WGANGP, d=1))
    real, fake = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    loss, logs = d_loss(model, real, fake)
    s_real, s_fake = model.discriminator(real), model.discriminator(fake)
    drift = 5.0 * s_real.pow(2).mean()
    assert logs["drift"].item() == pytest.approx(drift.item(), rel=1e-5)
    assert loss.item() == pytest.approx(LeastSquares().d_loss(s_real, s_fake).item() + drift.item(), rel=1e-5)
    d0 = params(model.discriminator)
    L.Trainer(**trainer_kwargs).fit(model, batches())
    assert not all(torch.equal(a, b) for a, b in zip(d0, params(model.discriminator)))
    assert model.hparams.objective == {"loss": "least_squares", "terms": {"drift": {"eps": 5.0}}, "augment": ""}
    assert model.objective.loss.name == "least_squares" and model.opt_d.lr == 1e-4  # WGANGP's Adam kept
    with_target = tiny(GAN, objective={"loss": {"least_squares": {"target": 0.5}}})  # a loss's arguments by name
    assert with_target.objective.loss.target == 0.5 and with_target.hparams.objective["loss"] == {"least_squares": {"target": 0.5}}
