"""What the loop optimizes: the adversarial loss, the terms, and D's judgement of images.

A model's `objective` argument (`ObjectiveSpec`: `loss`, `terms`, `augment`) becomes an
`Objective`. The loop hands it a `Step` for every loss it computes: the phase, the batch's
1-based index, the images, z, the labels and the D that judges them. Terms (`lit_gan.terms`)
see nothing but the Step: no model, no trainer. A term with `every` k > 1 is lazy (StyleGAN2's
lazy regularization, for any term): the objective adds its parts on every k-th batch only,
weighted by k.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from lit_gan.augment import diff_augment
from lit_gan.losses import AdversarialLoss
from lit_gan.util import require

Phase = Literal["d", "g", "val", "lookahead"]
"""`d`: D's update; `g`: G's; `val`: validation and test (no update, no regularizers);
`lookahead`: a D loss that no update of D follows (the unrolled term's copy of D, a trial step)."""

Spec = str | Mapping[str, Mapping[str, Any] | None]
"""A plug-in by name, `"hinge"`, or with arguments, `{hinge: {margin: 1}}` / `{r1: {gamma: 1}, r2: {}}`."""


@dataclass(frozen=True)
class ObjectiveSpec:
    """A model's objective, as configs write it.

    Args:
        loss: the adversarial loss, a name in `lit_gan.losses.LOSSES` (with arguments: {name: {...}}).
        terms: regularizers and extras, {name in `lit_gan.terms.TERMS`: arguments}; any term takes
            `every: k` (lazy: its parts on every k-th batch, weighted by k).
        augment: DiffAugment policy for D's inputs, e.g. "translation,cutout,color"; each op applies
            to every sample, or with the probability the `ada` term adapts.
    """

    loss: Spec = "nonsaturating"
    terms: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    augment: str = ""

    @classmethod
    def parse(cls, value: ObjectiveSpec | Mapping[str, Any]) -> ObjectiveSpec:
        if isinstance(value, cls):
            return value
        require(isinstance(value, Mapping) and set(value) <= {"loss", "terms", "augment"},
                f"objective takes loss, terms and augment, e.g. {{loss: hinge, terms: {{r1: {{gamma: 1}}}}}}; got {value!r}")
        return cls(**value)


class Judgement(NamedTuple):
    """D's view of a batch: adversarial logits (N,) and, with a class head, class logits (N, K)."""

    logits: Tensor
    classes: Tensor | None = None


def _ignore(values: Mapping[str, Tensor]) -> None:
    pass


@dataclass
class Step:
    """One loss the loop computes, as the objective and its terms see it. `index`: the 1-based
    number of the batch whose update this is; `log`: values to log (named without a prefix:
    `train/` or `val/` is added); `grad_scale`: the GradScaler's scale under 16-mixed (else 1);
    `d_lr`: the learning rate D steps with now; `logged`: its values reach the loggers (D's mean
    judgements are read out only then). The objective fills in D's judgements."""

    phase: Phase
    index: int
    objective: Objective
    discriminator: nn.Module
    real: Tensor
    fake: Tensor
    labels: Tensor | None = None
    z: Tensor | None = None
    log: Callable[[Mapping[str, Tensor]], None] = _ignore
    grad_scale: float | Tensor = 1.0
    d_lr: float = 0.0
    logged: bool = True
    real_out: Judgement | None = None
    fake_out: Judgement | None = None

    @property
    def training(self) -> bool:
        """A training-time loss (regularizers apply, images are augmented)."""
        return self.phase != "val"

    def every(self, k: int) -> bool:
        """Whether this is every k-th batch (k, 2k, ...)."""
        return self.index % k == 0

    def judge(self, images: Tensor) -> Judgement:
        """This step's D on `images`, with its labels and (while training) augmentation."""
        return self.objective.judge(images, self.labels, self.discriminator, augment=self.training)


class Term:
    """One part of the objective. Hooks (all optional): `d_loss` / `g_loss` add to D's / G's
    loss; `after_d_step` runs after every D update; `opponent` replaces the D that G's loss is
    computed against; `check` refuses objectives or discriminators it cannot work with;
    `state_dict` / `load_state_dict` keep running state in checkpoints. `class_head`: D outputs
    class logits too (and is not told labels). `augment_p`: the probability with which the
    augmentations apply to each sample (None: not set by this term). `every`: lazy (see above)."""

    name: str = ""
    class_head: bool = False
    augment_p: float | Tensor | None = None
    every: int = 1

    def check(self, objective: Objective, discriminator: nn.Module) -> None:
        """Raise ValueError when this term makes no sense with `objective` or `discriminator`."""

    def d_loss(self, step: Step) -> Tensor | None:
        return None

    def g_loss(self, step: Step) -> Tensor | None:
        return None

    def after_d_step(self, step: Step) -> None:
        """After D's update; `step` is its (last micro-batch's) loss."""

    def opponent(self, step: Step) -> nn.Module | None:
        return None

    def state_dict(self) -> dict[str, float]:
        return {}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        pass


class Objective:
    """The adversarial loss plus the terms, and D's judgement (with augmentation) of images."""

    def __init__(self, loss: AdversarialLoss, terms: Sequence[Term] = (), augment: Sequence[str] = (),
                 conditional: bool = False) -> None:
        self.loss, self.terms, self.augment, self.conditional = loss, list(terms), list(augment), conditional
        self.class_head = any(t.class_head for t in self.terms)

    def check(self, discriminator: nn.Module) -> None:
        for term in self.terms:
            term.check(self, discriminator)

    @property
    def augment_p(self) -> float | Tensor:
        """The probability with which each augmentation applies to a sample: a term's (ada), else 1."""
        return next((t.augment_p for t in self.terms if t.augment_p is not None), 1.0)

    def judge(self, images: Tensor, labels: Tensor | None, discriminator: nn.Module, augment: bool = False) -> Judgement:
        """D's logits on `images` (augmented when `augment`), split into the adversarial logit
        and class logits when a term gives D a class head (D is then not told the labels)."""
        if augment and self.augment:
            images = diff_augment(images, self.augment, self.augment_p)
        if not self.class_head:
            return Judgement(discriminator(images, labels))
        out = discriminator(images, None)
        return Judgement(out[:, 0], out[:, 1:])

    def d_loss(self, step: Step) -> tuple[Tensor, dict[str, Tensor]]:
        """D's adversarial loss plus every term's D part; with readouts (each part, and mean D(real) and
        D(fake) when the step is logged)."""
        step.real_out, step.fake_out = step.judge(step.real), step.judge(step.fake)
        loss = self.loss.d_loss(step.real_out.logits, step.fake_out.logits)
        logs = {"d_real": self.readout(step.real_out.logits), "d_fake": self.readout(step.fake_out.logits)} if step.logged else {}
        for term, part in self._parts(step, "d_loss"):
            loss, logs[term.name] = loss + part, part.detach()
        return loss, logs

    def g_loss(self, step: Step) -> Tensor:
        """G's adversarial loss against `step.discriminator` plus every term's G part."""
        step.fake_out = step.judge(step.fake)
        step.real_out = step.judge(step.real) if self.loss.g_sees_real else None
        loss = self.loss.g_loss(step.fake_out.logits, None if step.real_out is None else step.real_out.logits)
        for _, part in self._parts(step, "g_loss"):
            loss = loss + part
        return loss

    def _parts(self, step: Step, hook: str) -> Iterator[tuple[Term, Tensor]]:
        for term in self.terms:
            lazy = term.every > 1 and step.training
            if lazy and not step.every(term.every):
                continue
            part = getattr(term, hook)(step)
            if part is not None:
                yield term, part * term.every if lazy else part

    def opponent(self, step: Step) -> nn.Module | None:
        """The D that G's loss is computed against when a term replaces D (unrolled), else None."""
        return next((d for t in self.terms if (d := t.opponent(step)) is not None), None)

    def after_d_step(self, step: Step) -> None:
        if self.terms:
            with torch.no_grad():
                for term in self.terms:
                    term.after_d_step(step)

    def readout(self, scores: Tensor) -> Tensor:
        """Mean D(x): a probability for logistic losses, the raw critic score otherwise."""
        scores = scores.detach().float()
        return (torch.sigmoid(scores) if self.loss.logistic else scores).mean()

    def state_dict(self) -> dict[str, dict[str, float]]:
        """The terms' running state (e.g. ADA's p), by term name."""
        return {t.name: state for t in self.terms if (state := t.state_dict())}

    def load_state_dict(self, states: Mapping[str, Mapping[str, float]]) -> None:
        for term in self.terms:
            if term.name in states:
                term.load_state_dict(states[term.name])
