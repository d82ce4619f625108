"""The seam between the loop and the objective: what a `Step` carries, lazy terms as a loop
concept, phases instead of `torch.is_grad_enabled()`, and losses that take arguments."""

from __future__ import annotations

import inspect

import lightning as L
import pytest
import torch

from lit_gan import losses, terms
from lit_gan.models import DCGAN, GAN, R3GAN
from lit_gan.objective import Step, Term
from lit_gan.optim import Optim
from tests.conftest import LATENT, tiny
from tests.models.test_base import batches


class Recorder(Term):
    """Records every call it gets: (hook, phase, index), and G's noise and images."""

    def __init__(self, part: float = 0.0) -> None:
        self.part, self.calls, self.z = part, [], []

    def d_loss(self, step: Step) -> torch.Tensor | None:
        self.calls.append(("d_loss", step.phase, step.index))
        return torch.tensor(self.part) if self.part else None

    def g_loss(self, step: Step) -> torch.Tensor | None:
        self.calls.append(("g_loss", step.phase, step.index))
        if step.phase == "g":
            self.z.append((step.z, step.fake.detach()))
        return None

    def after_d_step(self, step: Step) -> None:
        self.calls.append(("after_d_step", step.phase, step.index))
        step.log({"recorded": torch.tensor(float(step.index))})


@pytest.fixture
def recorder(monkeypatch):
    monkeypatch.setitem(terms.TERMS, "recorder", Recorder)


def fit(model: GAN, trainer_kwargs: dict, n: int = 4) -> L.Trainer:
    trainer = L.Trainer(**{**trainer_kwargs, "limit_train_batches": n, "log_every_n_steps": 1})
    trainer.fit(model, batches(n), batches(1))
    return trainer


def test_a_step_states_its_phase_index_and_noise_in_a_real_fit(recorder, trainer_kwargs):
    model = tiny(DCGAN, objective={"terms": {"recorder": {}}}, opt_d=Optim(lr=2e-4, betas=(0.5, 0.999), steps=2))
    trainer = fit(model, trainer_kwargs)
    term = model.objective.terms[0]
    train = [c for c in term.calls if c[1] != "val"]
    assert train == [("d_loss", "d", 1), ("after_d_step", "d", 1),
                     ("d_loss", "d", 2), ("after_d_step", "d", 2), ("g_loss", "g", 2),
                     ("d_loss", "d", 3), ("after_d_step", "d", 3),
                     ("d_loss", "d", 4), ("after_d_step", "d", 4), ("g_loss", "g", 4)]
    assert {c[:2] for c in term.calls if c[1] == "val"} == {("d_loss", "val"), ("g_loss", "val")}
    for z, fake in term.z:  # the noise G's images of this step came from
        assert z.shape == (8, LATENT) and fake.shape == (8, 1, 28, 28)
    assert not torch.equal(term.z[0][0], term.z[1][0])
    assert trainer.callback_metrics["train/recorded"] == 4.0  # step.log reaches the loggers, prefixed


def test_lazy_is_a_loop_concept_any_term_takes(recorder, trainer_kwargs):
    """`every: 3`: the term's parts count on batches 3 and 6 only, three times over; validation is not lazy."""
    model = tiny(DCGAN, objective={"terms": {"recorder": {"part": 0.5, "every": 3}}})
    seen = []
    d_loss = model.objective.d_loss
    model.objective.d_loss = lambda step: (out := d_loss(step), seen.append((step.phase, step.index, out[1].get("recorder"))))[0]
    fit(model, trainer_kwargs, n=6)
    train = [(i, None if v is None else float(v)) for phase, i, v in seen if phase == "d"]
    assert train == [(1, None), (2, None), (3, 1.5), (4, None), (5, None), (6, 1.5)]
    val = [float(v) for phase, _, v in seen if phase == "val"]  # the sanity check's and the epoch's
    assert len(val) == 2 and set(val) == {0.5}
    with pytest.raises(ValueError, match="recorder every must be an integer >= 1"):
        terms.build({"recorder": {"every": 0}})


def test_the_lookahead_phase_adds_training_parts_but_no_running_statistics(trainer_kwargs):
    """The unrolled term's look-ahead losses run ADA's d_loss too, in phase `lookahead`: its
    count of real images is only that of D's own updates."""
    model = tiny(R3GAN, objective={"loss": "rpgan", "augment": "translation",
                                   "terms": {"ada": {"interval": 100}, "unrolled": {"steps": 3}}})
    fit(model, trainer_kwargs, n=3)
    signs, images = model.objective.terms[0].signal.tolist()
    assert images == 3 * 8 and abs(signs) <= images


def test_a_loss_takes_arguments_as_a_term_does():
    model = tiny(DCGAN, objective={"loss": {"hinge": {"margin": 2.0}}})
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert model.objective.loss.name == "hinge" and model.hparams.objective["loss"] == {"hinge": {"margin": 2.0}}
    assert model.objective.loss.d_loss(real, fake).item() == pytest.approx((1.0 + 0.0) / 2 + (1.0 + 2.0) / 2)
    with pytest.raises(ValueError, match=r"loss 'hinge' takes margin; got \{'width': 3\}"):
        losses.build({"hinge": {"width": 3}})
    with pytest.raises(ValueError, match=r"unknown loss 'relativistic'; choose from \['hinge'"):
        losses.build("relativistic")


def test_the_gan_takes_at_most_ten_grouped_arguments():
    params = inspect.signature(GAN.__init__).parameters
    assert len(params) - 1 <= 10, list(params)
    model = tiny(GAN)
    assert set(model.hparams) == set(params) - {"self"}
    for group in ("latent", "objective", "opt_g", "opt_d", "ema"):  # plain data in checkpoints
        assert isinstance(model.hparams[group], dict), group


@pytest.mark.parametrize("argument, value, message", [
    ("latent", {"dim": 0}, "latent dim must be an integer >= 1"),
    ("latent", {"noise": "cauchy"}, "latent noise must be 'normal' or 'uniform'"),
    ("latent", {"clusters": 1}, "latent clusters must be an integer >= 2"),
    ("latent", {"size": 3}, "latent takes dim, noise, sample_seed"),
    ("ema", {"decay": 1.0}, r"ema decay must lie in \[0, 1\)"),
    ("opt_d", {"steps": 0}, "steps must be an integer >= 1"),
    ("objective", {"los": "hinge"}, "objective takes loss, terms and augment"),
])
def test_bad_grouped_settings_are_named(argument, value, message):
    with pytest.raises(ValueError, match=message):
        GAN(**{argument: value})


def test_a_group_given_as_a_mapping_changes_only_its_fields_over_the_variants_defaults():
    from lit_gan.models import WGANGP

    r3 = tiny(R3GAN, objective={"terms": {"r1": {"gamma": 1.0}}})
    assert r3.objective.loss.name == "rpgan" and [t.name for t in r3.objective.terms] == ["r1"]
    assert (tiny(WGANGP, opt_d={"steps": 1}).opt_d.lr, tiny(WGANGP, opt_d={"steps": 1}).opt_d.steps) == (1e-4, 1)
    assert tiny(WGANGP, opt_d=Optim(steps=1)).opt_d.lr == Optim().lr  # a settings object replaces the group whole
