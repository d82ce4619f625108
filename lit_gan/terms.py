"""The objective's parts besides the adversarial loss: regularizers and extras, by name.

A model takes them as `terms`, a mapping from a name in `TERMS` to that class's arguments:

    terms: {gradient_penalty: {weight: 10}}          # WGAN-GP
    terms: {label_noise: {flip: 0.1}, unrolled: {steps: 5}}
    terms: {r1: {gamma: 0.05}, r2: {gamma: 0.05}}           # R3GAN (with loss: rpgan)
    terms: {r1: {gamma: 1, every: 16}}                      # lazy: every 16th batch, weighted by 16

Each term (`lit_gan.objective.Term`) overrides only the hooks it needs, sees only the `Step`,
and declares what it cannot be combined with in `check`. A new regularizer is one class here
plus one line in `TERMS`.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gan.collective import average_gradients, sum_over_processes
from lit_gan.losses import gradient_penalty, zero_centred_penalty
from lit_gan.objective import Judgement, Objective, Step, Term
from lit_gan.util import check_int, construct, require


def has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def has_spectral_norm(net: nn.Module) -> bool:
    return any(hasattr(m, "parametrizations") for m in net.modules())


class GradientPenalty(Term):
    """WGAN-GP (Gulrajani et al. 2017): `weight` * E[(||grad D(x)|| - 1)^2] at random
    interpolates between real and fake images. Needs a critic without batch norm."""

    def __init__(self, weight: float = 10.0) -> None:
        require(weight > 0, f"gradient_penalty weight must be > 0 (remove the term to turn it off), got {weight}")
        self.weight = weight

    def check(self, objective: Objective, discriminator: nn.Module) -> None:
        require_per_sample_critic(discriminator, "the per-sample gradient penalty")

    def d_loss(self, step: Step) -> Tensor | None:
        if not step.training:  # validation: the loss without the penalty
            return None
        return self.weight * gradient_penalty(critic(step), step.real, step.fake, step.grad_scale)


def require_per_sample_critic(discriminator: nn.Module, penalty: str) -> None:
    require(
        not has_batch_norm(discriminator),
        f"batch norm in the critic breaks {penalty} (it mixes samples): use a discriminator without it, "
        "e.g. --model.init_args.discriminator.init_args.norm none (or spectral), or R3GANDiscriminator",
    )


def critic(step: Step) -> Callable[[Tensor], Tensor]:
    """D's adversarial logits as a function of its input images (labels and augmentation as in `step`)."""
    return lambda x: step.judge(x).logits


class ZeroCentredPenalty(Term):
    """`gamma`/2 * E||grad_x D(x)||^2 at the samples themselves (Mescheder et al. 2018), on the
    real batch (R1) or the generated one (R2); through D's augmentation when there is one.
    StyleGAN2's lazy R1 is `every: 16` (any term takes it)."""

    on_real: bool = True

    def __init__(self, gamma: float = 1.0) -> None:
        name = "r1" if self.on_real else "r2"
        require(gamma > 0, f"{name} gamma must be > 0 (remove the term to turn it off), got {gamma}")
        self.gamma = gamma

    def check(self, objective: Objective, discriminator: nn.Module) -> None:
        require_per_sample_critic(discriminator, f"the per-sample {self.name} penalty")

    def d_loss(self, step: Step) -> Tensor | None:
        if not step.training:
            return None
        x = step.real if self.on_real else step.fake
        return self.gamma / 2 * zero_centred_penalty(critic(step), x, step.grad_scale)


class R1(ZeroCentredPenalty):
    """R1: the zero-centred gradient penalty on real data."""


class R2(ZeroCentredPenalty):
    """R2: the zero-centred gradient penalty on generated data."""

    on_real = False


class WeightClipping(Term):
    """WGAN (Arjovsky et al. 2017): every critic weight clamped to [-value, value] after each D step."""

    def __init__(self, value: float = 0.01) -> None:
        require(value > 0, f"weight_clipping value must be > 0 (remove the term to turn it off), got {value}")
        self.value = value

    def check(self, objective: Objective, discriminator: nn.Module) -> None:
        require(
            not any(isinstance(t, GradientPenalty) for t in objective.terms),
            "weight clipping and a gradient penalty are two ways to the same Lipschitz constraint and fight "
            "each other: keep one (WGAN: weight_clipping; WGANGP: gradient_penalty)",
        )
        require(not has_spectral_norm(discriminator), "spectral normalisation already bounds the critic; do not clip its weights as well")

    @torch.no_grad()
    def after_d_step(self, step: Step) -> None:
        for p in step.discriminator.parameters():
            p.clamp_(-self.value, self.value)


class AuxClassifier(Term):
    """ACGAN (Odena et al. 2017): D also predicts the class (logits into cross-entropy, never a
    softmax first) and is not told the label; D and G both minimise the class loss."""

    class_head = True

    def __init__(self, weight: float = 1.0) -> None:
        require(weight > 0, f"aux_classifier weight must be > 0, got {weight}")
        self.weight = weight

    def check(self, objective: Objective, discriminator: nn.Module) -> None:
        require(objective.conditional, "aux_classifier (ACGAN) needs conditional=True: G must be told which class to draw")

    def _loss(self, judged: Judgement, labels: Tensor | None) -> Tensor:
        assert judged.classes is not None and labels is not None
        return F.cross_entropy(judged.classes.float(), labels)

    def d_loss(self, step: Step) -> Tensor | None:
        assert step.real_out is not None
        return self.weight * (self._loss(step.real_out, step.labels) + self._loss(step.fake_out, step.labels))

    def g_loss(self, step: Step) -> Tensor | None:
        return self.weight * self._loss(step.fake_out, step.labels)


def discriminator_targets(
    n: int, real: bool, flip: float = 0.0, smoothing: float = 0.0, device: torch.device | str = "cpu"
) -> Tensor:
    """Targets for a logistic D: 1 (real) or 0 (fake), each flipped with probability `flip`;
    real targets are one-sided smoothed to `1 - smoothing` (fake targets stay 0)."""
    targets = torch.full((n,), 1.0 if real else 0.0, device=device)
    if flip > 0:
        targets = torch.where(torch.rand(n, device=device) < flip, 1.0 - targets, targets)
    if smoothing > 0:
        targets = torch.where(targets > 0.5, targets - smoothing, targets)
    return targets


class LabelNoise(Term):
    """Noisy targets for a logistic D while training: each real/fake target flipped with
    probability `flip`, real targets one-sided smoothed to `1 - smoothing` (Salimans et al. 2016).
    Binary cross-entropy is linear in its target, BCE(x, t) = softplus(x) - t*x, so D's loss with
    noisy targets t' is its clean loss plus -(t' - t)*x: this term."""

    def __init__(self, flip: float = 0.0, smoothing: float = 0.0) -> None:
        for key, value in (("flip", flip), ("smoothing", smoothing)):
            require(0.0 <= value <= 1.0, f"label_noise {key} is a probability and must lie in [0, 1], got {value}")
        self.flip, self.smoothing = flip, smoothing

    def check(self, objective: Objective, discriminator: nn.Module) -> None:
        require(
            objective.loss.logistic,
            f"label_noise changes the targets of a logistic D; loss={objective.loss.name!r} has no targets: remove the term",
        )

    def d_loss(self, step: Step) -> Tensor | None:
        if not step.training:
            return None
        assert step.real_out is not None
        real, fake = step.real_out.logits, step.fake_out.logits
        t_real = discriminator_targets(len(real), True, self.flip, self.smoothing, real.device)
        t_fake = discriminator_targets(len(fake), False, self.flip, self.smoothing, fake.device)
        return ((1 - t_real) * real).mean() - (t_fake * fake).mean()


class Unrolled(Term):
    """Unrolled GAN (Metz et al. 2017), first-order: G trains against a copy of D advanced
    `steps` SGD steps (at D's learning rate) on D's full loss (phase `lookahead`: the terms'
    training parts, no running statistics); D itself is untouched. In validation G's loss is
    computed against D as it is."""

    def __init__(self, steps: int = 5) -> None:
        check_int("unrolled steps", steps, 1, "e.g. {unrolled: {steps: 5}}")
        self.steps = steps

    def opponent(self, step: Step) -> nn.Module | None:
        if not step.training:
            return None
        ahead = copy.deepcopy(step.discriminator).requires_grad_(True)
        sgd = torch.optim.SGD(ahead.parameters(), lr=step.d_lr)
        with torch.enable_grad():
            for _ in range(self.steps):
                look = dataclasses.replace(step, phase="lookahead", discriminator=ahead, fake=step.fake.detach())
                loss, _ = step.objective.d_loss(look)
                sgd.zero_grad(set_to_none=True)
                loss.backward()
                average_gradients(ahead)  # under DDP: look ahead on the global batch, as D steps
                sgd.step()
        return ahead.requires_grad_(False)


class AdaptiveAugment(Term):
    """ADA (Karras et al. 2020): each op of the model's `augment` policy applies to each sample
    with probability p, which follows D's overfitting signal r_t = E[sign(D(real))] (on the
    augmented reals of the D steps): every `interval` D steps p rises if r_t > `target` and falls
    otherwise, by as much as lets it cross [0, 1] in `ramp_images` real images. p starts at `p`,
    is logged as train/ada_p and kept in checkpoints; across processes the signal is summed.
    The signal and p live on the device: adapting p never waits for it."""

    def __init__(self, target: float = 0.6, interval: int = 4, ramp_images: int = 500_000, p: float = 0.0) -> None:
        require(0.0 < target < 1.0, f"ada target is a value of E[sign(D(real))] and must lie in (0, 1), got {target}")
        check_int("ada interval", interval, 1, "it counts D steps, e.g. {ada: {interval: 4}}")
        require(ramp_images > 0, f"ada ramp_images must be > 0 (real images for p to go from 0 to 1), got {ramp_images}")
        require(0.0 <= p <= 1.0, f"ada p is a probability and must lie in [0, 1], got {p}")
        self.target, self.interval, self.ramp_images = target, interval, ramp_images
        self.augment_p = torch.tensor(float(p))
        self.signal = torch.zeros(2, dtype=torch.float64)  # sum of sign(D(real)), real images: since the last adjustment

    def check(self, objective: Objective, discriminator: nn.Module) -> None:
        require(bool(objective.augment), "ada adapts how often the augment policy applies: give one, "
                "e.g. --model.init_args.objective.augment translation,cutout,color")

    def d_loss(self, step: Step) -> Tensor | None:
        if step.phase == "d":  # D's update (each of its micro-batches)
            assert step.real_out is not None
            logits = step.real_out.logits.detach()
            seen = torch.full((), float(len(logits)), dtype=torch.float64, device=logits.device)  # a fill, not a host copy
            self.signal = self.signal.to(logits.device) + torch.stack([logits.sign().sum().double(), seen])
        return None

    @torch.no_grad()
    def after_d_step(self, step: Step) -> None:
        self.augment_p = self.augment_p.to(step.real.device)
        if step.every(self.interval):
            signs, images = sum_over_processes(self.signal.to(step.real.device)).unbind()
            direction = torch.sign(signs / images.clamp(min=1) - self.target)  # 0 when no image was seen
            self.augment_p = (self.augment_p + direction * images / self.ramp_images).clamp(0.0, 1.0).float()
            self.signal = torch.zeros_like(self.signal)
        step.log({"ada_p": self.augment_p})

    def state_dict(self) -> dict[str, float]:
        signs, images = self.signal.tolist()
        return {"p": float(self.augment_p), "signs": signs, "images": images}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self.augment_p = torch.tensor(float(state["p"]))
        self.signal = torch.tensor([state["signs"], state["images"]], dtype=torch.float64)


TERMS: dict[str, type[Term]] = {
    "gradient_penalty": GradientPenalty,
    "r1": R1,
    "r2": R2,
    "ada": AdaptiveAugment,
    "weight_clipping": WeightClipping,
    "aux_classifier": AuxClassifier,
    "label_noise": LabelNoise,
    "unrolled": Unrolled,
}
"""Every term by the name `--model.init_args.objective.terms` takes."""


def build(spec: Mapping[str, Mapping[str, Any] | None]) -> list[Term]:
    """Terms from {name: arguments}, in the given order; `every` (any term's) makes it lazy."""
    terms = []
    for name, args in dict(spec).items():
        args = dict(args or {})
        every = args.pop("every", 1)
        check_int(f"{name} every", every, 1, "a term with every k is added on every k-th batch, weighted by k (1: always)")
        term = construct("term", TERMS, name, args)
        term.name, term.every = name, every
        terms.append(term)
    return terms
