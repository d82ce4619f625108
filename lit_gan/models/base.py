"""`GAN`: the one training loop. Every variant is this class with other defaults.

Each round of training is `opt_d.steps` batches, each with one discriminator step, then
`opt_g.steps` generator steps. `self.batches_seen` (saved with checkpoints) drives that schedule:
Lightning's `global_step` counts optimizer steps (two or more per batch here), so
`--trainer.max_steps` counts D and G updates together; prefer `max_epochs` or
`limit_train_batches`.

What the loop trains is given to it: the networks (`generator`, `discriminator`) and the
objective (`lit_gan.objective`: the adversarial loss, the terms, D's augmentation). The loop
hands the objective a `Step` for each loss and keeps the rest: the schedule, accumulation,
clipping, EMA, seeding, logging and checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import os
import time
import uuid
import warnings
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from lit_gan import losses, nets, self_conditioning, terms
from lit_gan.augment import parse_policy
from lit_gan.errors import Diverged
from lit_gan.hardware import skip_nvml_probe_without_driver, warn_if_bf16_is_emulated
from lit_gan.models import legacy
from lit_gan.models.checks import AccumulationSchedule, check_callbacks
from lit_gan.models.plumbing import DirectSteps, fast_plain_setattr, moved_batch, quiet_profiler
from lit_gan.nets import DiscriminatorFactory, GeneratorFactory, net
from lit_gan.objective import Objective, ObjectiveSpec, Phase, Step
from lit_gan.optim import EMA, Optim
from lit_gan.util import check_int, parse, require

Batch = tuple[Tensor, Tensor]


@dataclass(frozen=True)
class Latent:
    """G's input.

    Args:
        dim: size of z.
        noise: z ~ N(0, I) ("normal") or U(-1, 1) ("uniform").
        sample_seed: seed of the fixed noise behind sample grids and `predict`.
        clusters: k >= 2 for a categorical code drawn with z: self-conditioning on k k-means
            clusters of the training images, found when training starts (`lit_gan.self_conditioning`;
            unconditional models only); 0: none.
    """

    dim: int = 100
    noise: Literal["normal", "uniform"] = "normal"
    sample_seed: int = 0
    clusters: int = 0

    def __post_init__(self) -> None:
        check_int("latent dim", self.dim, 1, "e.g. --model.init_args.latent.dim 100")
        require(self.noise in ("normal", "uniform"), f"latent noise must be 'normal' or 'uniform', got {self.noise!r}")
        check_int("latent sample_seed", self.sample_seed, 0, "any seed >= 0")
        if self.clusters:
            check_int("latent clusters", self.clusters, 2, "the number of k-means clusters to condition on, e.g. "
                      "--model.init_args.latent.clusters 20; 0 turns self-conditioning off")


class GAN(L.LightningModule):
    """A GAN trained with alternating D/G updates (manual optimization).

    Defaults are the fully connected GAN of Goodfellow et al. (2014): one hidden layer of 128
    units in G and D, Adam(1e-3, betas 0.9/0.999), the non-saturating generator loss.

    Args:
        image_shape: (C, H, W); the CLI links it from the data.
        num_classes: classes in the data (0: no labels); the CLI links it from the data.
        conditional: feed labels to G (and to D, unless a term gives D a class head).
        generator: G's class and options (`lit_gan.nets`), built with (image_shape, latent.dim, classes).
        discriminator: D's class and options, built with (image_shape, classes, outputs).
        latent: z's size and distribution, and the seed of the sample grid's fixed noise (`Latent`).
        objective: the adversarial loss, the terms and D's augmentation (`lit_gan.objective.ObjectiveSpec`),
            e.g. {loss: hinge, terms: {r1: {gamma: 1}}, augment: translation}.
        opt_g, opt_d: each network's optimizer and steps per round (`lit_gan.optim.Optim`).
        ema: an exponential moving average of G, used outside training (`lit_gan.optim.EMA`).

    To start from another run's weights (fine-tuning): `load_weights(path)`, or `--weights_from` in the CLI.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 0,
        conditional: bool = False,
        generator: GeneratorFactory = net(nets.MLPGenerator),
        discriminator: DiscriminatorFactory = net(nets.MLPDiscriminator),
        latent: Latent = Latent(),
        objective: ObjectiveSpec = ObjectiveSpec(),
        opt_g: Optim = Optim(lr=1e-3, betas=(0.9, 0.999)),
        opt_d: Optim = Optim(lr=1e-3, betas=(0.9, 0.999)),
        ema: EMA = EMA(),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        latent, objective, opt_g, opt_d, ema = (self._over_default(name, value) for name, value in
                                                 (("latent", latent), ("objective", objective), ("opt_g", opt_g),
                                                  ("opt_d", opt_d), ("ema", ema)))
        self.latent, self.ema = parse(Latent, latent, "latent"), parse(EMA, ema, "ema")
        self.opt_g, self.opt_d = Optim.parse(opt_g), Optim.parse(opt_d)
        spec = ObjectiveSpec.parse(objective)
        g_spec, d_spec = nets.as_spec(generator), nets.as_spec(discriminator)
        term_specs = {name: dict(args or {}) for name, args in dict(spec.terms).items()}
        # plain data in checkpoints (loadable with weights_only=True)
        self.hparams.update(latent=asdict(self.latent), ema=asdict(self.ema), opt_g=asdict(self.opt_g), opt_d=asdict(self.opt_d),
                            generator=g_spec, discriminator=d_spec,
                            objective={"loss": spec.loss if isinstance(spec.loss, str) else dict(spec.loss), "terms": term_specs,
                                       "augment": spec.augment})
        clusters = self.latent.clusters
        if clusters:
            require(not conditional, f"latent.clusters={clusters} self-conditions an unconditional model; {type(self).__name__} is "
                    "conditional on the data's labels already: use --model DCGAN (or another unconditional variant)")
        self.objective = Objective(losses.build(spec.loss), terms.build(term_specs), parse_policy(spec.augment),
                                   conditional or bool(clusters))
        k = num_classes if conditional else clusters
        self.generator = nets.build(g_spec, tuple(image_shape), self.latent.dim, k)
        if clusters:
            self.generator = self_conditioning.ClusterConditioned(self.generator, clusters, self.latent.noise)
            pooled = self_conditioning.pixel_features(torch.zeros(1, *image_shape)).shape[1]
            self.register_buffer("cluster_centroids", torch.zeros(clusters, pooled))  # found when training starts
        outputs = 1 + (num_classes if self.objective.class_head else 0)
        self.discriminator = nets.build(d_spec, tuple(image_shape), 0 if self.objective.class_head else k, outputs)
        require(not (conditional or self.objective.class_head) or num_classes >= 2,
                f"{type(self).__name__} uses class labels and needs labelled data with at least 2 classes, but the data has "
                f"num_classes={num_classes}; use labelled data (e.g. --data EmbeddedMNIST, or an ImageFolder with one "
                "subfolder per class) or an unconditional model (e.g. --model DCGAN)")
        self.objective.check(self.discriminator)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False).eval() if self.ema.decay else None
        # G's and D's DistributedDataParallel wrappers while `lit_gan.distributed.GANDDPStrategy` fits
        # (a plain dict: outside the module tree and the checkpoints); the training step calls them
        self.ddp: dict[str, nn.Module] = {}
        self.batches_seen = 0
        self._micro_batches: list[Batch] = []  # of the batch being accumulated (accumulate_grad_batches)
        self._lightning_flags: dict[str, Any] = {}  # Trainer flags the loop takes over (configure_callbacks)
        self._grad_norms: dict[str, Tensor] = {}  # before clipping, this batch's (gradient_clip_val)
        self._readouts: dict[str, Tensor] = {}  # the last step's values to log, on the device until they are published
        self._val_logs: dict[str, Tensor] = {}  # what terms log in a validation step
        self._losses: list[tuple[int, str, Tensor]] = []  # (batch, network, loss) since the last finiteness check
        self._steps = DirectSteps()  # backward and optimizer steps: past Lightning's plumbing when it adds nothing
        self._d_params: list[Tensor] = []  # what D's optimizer updates, frozen in G's step (set as a fit starts)
        self.run_id = uuid.uuid4().hex  # kept by resumes: which checkpoints belong to one run
        self.training_seed = int(os.environ.get("PL_GLOBAL_SEED", self.latent.sample_seed))
        # Sample grid: 64 images; with classes (or clusters), one column per class (max 16), one noise per row.
        self.grid_columns = min(k, 16) if k else 8
        fixed = torch.Generator().manual_seed(self.latent.sample_seed)
        z = self.sample_z(8, fixed).repeat_interleave(self.grid_columns, 0) if k else self.sample_z(64, fixed)
        self.register_buffer("grid_z", z)
        labels = torch.arange(self.grid_columns).repeat(8) if k else torch.zeros(64, dtype=torch.long)
        self.register_buffer("grid_labels", labels)

    @classmethod
    def _over_default(cls, name: str, value: Any) -> Any:
        """A settings group given as a mapping changes only the fields it names, over this variant's
        default (as `--model.init_args.<name>.<field>` does in the CLI): `R3GAN(objective={"terms": ...})`
        keeps R3GAN's loss. A settings object replaces the default whole."""
        if not isinstance(value, Mapping):
            return value
        default = next(p.default for klass in cls.__mro__ if "__init__" in vars(klass)
                       and (p := inspect.signature(klass.__init__).parameters.get(name)) is not None
                       and p.default is not p.empty)
        return {**asdict(default), **value} if is_dataclass(default) else value

    # ----- the model contract (lit_gan.models.Generative) ------------------------------------
    @property
    def conditional(self) -> bool:
        return bool(self.hparams.conditional)

    @property
    def num_classes(self) -> int:
        return int(self.hparams.num_classes)

    @property
    def value_range(self) -> tuple[float, float]:
        """The range of G's images: (-1, 1) for tanh, (0, 1) for sigmoid."""
        return tuple(getattr(self.generator, "value_range", (-1.0, 1.0)))  # type: ignore[return-value]

    @property
    def noise(self) -> str:
        return self.latent.noise

    @property
    def latent_dim(self) -> int:
        return self.latent.dim

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z for `n` samples, drawn on CPU when a seeded `generator` is given (same z on any device)."""
        shape, device = (n, self.latent.dim), "cpu" if generator is not None else self.device
        if self.latent.noise == "uniform":
            z = torch.rand(shape, generator=generator, device=device) * 2 - 1
        else:
            z = torch.randn(shape, generator=generator, device=device)
        return z.to(self.device, self.dtype)  # the weights' dtype: bf16 under bf16-true, float64 under 64-true

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        """`n` uniformly drawn class labels for a conditional model, else None."""
        if not self.conditional:
            return None
        device = "cpu" if generator is not None else self.device
        return torch.randint(0, self.num_classes, (n,), generator=generator, device=device).to(self.device)

    def generate(
        self, n: int | None = None, labels: Tensor | None = None, z: Tensor | None = None, generator: nn.Module | None = None
    ) -> Tensor:
        """Images from G (or `generator`) for noise `z` (drawn when absent) and `labels` (conditional
        models). Outside training the EMA generator is used when there is one."""
        if z is None:
            z = self.sample_z(n if n is not None else len(labels))  # type: ignore[arg-type]
        if generator is None:
            generator = self.generator_ema if self.generator_ema is not None and not self.training else self.generator
        return generator(z.to(self.dtype), labels if self.conditional or self.latent.clusters else None)

    @torch.no_grad()
    def fixed_samples(self) -> tuple[Tensor, int]:
        """Images of the fixed grid noise (kept in checkpoints, so grids compare across epochs),
        generated in eval mode, and how many go in a grid row (one column per class when conditional)."""
        was_training = self.training
        self.eval()
        images = self.generate(labels=self.grid_labels, z=self.grid_z)
        self.train(was_training)
        return images, self.grid_columns

    # ----- the objective ----------------------------------------------------------------------
    def step(self, phase: Phase, real: Tensor, fake: Tensor, labels: Tensor | None, z: Tensor | None = None,
             discriminator: nn.Module | None = None, index: int | None = None, logged: bool = True) -> Step:
        """A `Step` of this model's objective: D (or `discriminator`) judging `real` and `fake`."""
        opt_d = self._trainer is not None and self.trainer.optimizers
        return Step(phase, self.batches_seen + 1 if index is None else index, self.objective,
                    self.discriminator if discriminator is None else discriminator, real, fake, labels, z,
                    self._log_val if phase == "val" else self._log_train, self.grad_scale(),
                    opt_d[1].param_groups[0]["lr"] if opt_d else self.opt_d.lr, logged)

    def losses(self, real: Tensor, labels: Tensor | None, phase: Phase = "lookahead") -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """D's loss (with readouts) and G's loss on a batch, as a training step computes them but
        with no update (`lookahead`: no running statistics) or as validation does (`val`)."""
        labels = self._labels(real, labels) if labels is not None else None
        z = self.sample_z(len(real))
        fake = self.generate(labels=labels, z=z)
        loss_d, readouts = self.objective.d_loss(self.step(phase, real, fake.detach(), labels, z))
        g_step = self.step("val" if phase == "val" else "g", real, fake, labels, z)
        g_step.discriminator = self.objective.opponent(g_step) or g_step.discriminator
        return loss_d, readouts, self.objective.g_loss(g_step)

    def grad_scale(self) -> float | Tensor:
        """The GradScaler's scale under 16-mixed precision, else 1: its tensor on the device once it
        has one (`get_scale()` would read it on the host, a synchronization in every D step)."""
        scaler = self._grad_scaler()
        if scaler is None:
            return 1.0
        scale = getattr(scaler, "_scale", None)  # set by the first scale(); torch keeps it private
        return scale if isinstance(scale, Tensor) else float(scaler.get_scale())

    def _grad_scaler(self) -> torch.amp.GradScaler | None:
        scaler = getattr(self._trainer.precision_plugin, "scaler", None) if self._trainer is not None else None
        return scaler if scaler is not None and scaler.is_enabled() else None

    def _log_train(self, values: Mapping[str, Tensor]) -> None:
        self.record({f"train/{name}": value for name, value in values.items()})

    def _log_val(self, values: Mapping[str, Tensor]) -> None:
        self._val_logs.update(values)

    # ----- training ---------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        """One D step, then G's steps when it is G's turn. All randomness in the step (noise, label
        noise, dropout, augmentation) is seeded by the batch count and the rank, so a resumed run
        repeats the uninterrupted one exactly. With `--trainer.accumulate_grad_batches N`, N loader
        batches (micro-batches) make one batch: they are kept until the N-th (or the epoch's last)
        arrives, then each update sums their gradients, one micro-batch's graph at a time."""
        trainer = self.trainer
        self._micro_batches.append(batch)
        epoch_ends = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch or batch_idx + 1 >= trainer.num_training_batches
        # Lightning's own test of "this step is logged" (private; the same steps land in metrics.csv and W&B as before)
        logged = epoch_ends or trainer._logger_connector.should_update_logs or trainer.fast_dev_run
        if len(self._micro_batches) >= trainer.accumulate_grad_batches or epoch_ends:
            group = [tuple(t.to(self.device) for t in b) for b in self._micro_batches]  # (kept in a checkpoint: on CPU)
            self._micro_batches.clear()
            with self._seeded(self.training_seed + self.batches_seen * trainer.world_size + self.global_rank):
                # accumulating, a logging step may fall between updates: then it logs the last update's values
                self._train_step(group, logged or trainer.accumulate_grad_batches > 1)
        if logged:
            self.publish()

    # Lightning reads this signature before every batch (`is_param_in_hook_signature`): computed once
    training_step.__signature__ = inspect.signature(training_step)  # type: ignore[attr-defined]

    def record(self, values: Mapping[str, Tensor]) -> None:
        """Values of this step to log (tensors stay on the device): they reach Lightning's loggers, as
        before, at `--trainer.log_every_n_steps` and at the end of each epoch, in one transfer."""
        self._readouts.update({name: value.detach() if value.requires_grad else value for name, value in values.items()})

    def publish(self) -> None:
        """The step's one host-device synchronization, once per logging interval: the recorded values
        and every loss since the last check come to the host together; a non-finite loss stops the
        run (`Diverged`), else the values are logged."""
        names, losses = list(self._readouts), self._losses
        parts = [self._readouts[n].float().reshape(()) for n in names] + [loss.float().reshape(()) for *_, loss in losses]
        if not parts:
            return
        host = torch.stack(parts).to("cpu", copy=True)
        self._readouts, self._losses = {}, []
        self._raise_if_diverged(losses, host[len(names):])
        if names:
            self.log_dict(dict(zip(names, host[: len(names)].unbind())))

    @contextlib.contextmanager
    def _seeded(self, seed: int) -> Iterator[None]:
        """Draws inside come from `seed`; the global RNG state outside is left as it was (what
        `torch.random.fork_rng` does, for the CPU's generator and this device's alone, at a fraction of its cost)."""
        device = (self.device.index or 0) if self.device.type == "cuda" else None
        cpu_state = torch.default_generator.get_state()
        cuda_state = torch.cuda.get_rng_state(device) if device is not None else None
        torch.default_generator.manual_seed(seed)  # torch.manual_seed would probe every backend: ~1 ms
        if device is not None:
            torch.cuda.manual_seed(seed)
        try:
            yield
        finally:
            torch.default_generator.set_state(cpu_state)
            if cuda_state is not None:
                torch.cuda.set_rng_state(cuda_state, device)

    def _train_step(self, group: list[Batch], logged: bool = True) -> None:
        sizes = [len(b[0]) for b in group]
        real = torch.cat([b[0] for b in group]) if len(group) > 1 else group[0][0]
        labels = self._labels(real, torch.cat([b[1] for b in group]) if len(group) > 1 else group[0][1])
        opt_g, opt_d = self.optimizers()
        # under DDP the networks being trained run through their wrappers, which sync their gradients;
        # G's loss sees the plain D (frozen then)
        g, d = (self.ddp.get(name, getattr(self, name)) for name in ("generator", "discriminator"))
        index = self.batches_seen + 1  # this batch; counted in batches_seen once all of its updates are done
        g_turn = index % self.opt_d.steps == 0
        whole = len(group) == 1  # one micro-batch: G's graph from D's fakes serves G's first step
        z = self.sample_z(len(real))
        with torch.set_grad_enabled(g_turn and whole):  # keep G's graph only when G steps next
            fake = self.generate(labels=labels, z=z, generator=g)
        # D's step: G needs no freezing, its images come detached
        self._steps.zero_grad(opt_d)
        loss_d, logs, last = self._accumulate("discriminator", sizes, (real, fake.detach(), z, labels), self.objective.d_loss,
                                              lambda r, f, zc, y: self.step("d", r, f, y, zc, d, index, logged))
        self._steps.step(self, opt_d)
        self.objective.after_d_step(last)
        self.record({"train/d_loss": loss_d, **{f"train/{k}": v for k, v in logs.items()}})
        if g_turn:
            g_loss = lambda s: (self.objective.g_loss(s), {})  # noqa: E731
            for g_step in range(self.opt_g.steps):
                if g_step:
                    z = self.sample_z(len(real))
                with self._d_frozen():
                    if g_step:
                        with torch.set_grad_enabled(whole):
                            fake = self.generate(labels=labels, z=z, generator=g)
                    step = self.step("g", real, fake, labels, z, index=index)
                    step.discriminator = self.objective.opponent(step) or step.discriminator  # once per G step, on the whole batch
                    self._steps.zero_grad(opt_g)
                    if whole:
                        make = lambda r, zc, y: step  # noqa: E731
                    else:  # G's images again, one micro-batch's graph at a time
                        make = lambda r, zc, y: self.step("g", r, self.generate(labels=y, z=zc, generator=g), y, zc, step.discriminator, index)  # noqa: E731
                    loss_g, _, _ = self._accumulate("generator", sizes, (real, z, labels), g_loss, make)
                    self._steps.step(self, opt_g)
                self.update_ema()
            self.record({"train/g_loss": loss_g})
        if self._grad_norms:
            self.record(self._grad_norms)
            self._grad_norms = {}
        self.batches_seen = index

    @contextlib.contextmanager
    def _d_frozen(self) -> Iterator[None]:
        """Inside (G's step), the parameters D's optimizer updates get no gradients (Lightning's
        `toggled_optimizer(opt_g)`, without its dictionary over every parameter); their `requires_grad`
        is restored after."""
        params = self._d_params
        states = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, state in zip(params, states):
                p.requires_grad_(state)

    def _accumulate(self, network: str, sizes: list[int], inputs: tuple[Tensor | None, ...],
                    loss_fn: Callable[[Step], tuple[Tensor, dict[str, Tensor]]],
                    make_step: Callable[..., Step]) -> tuple[Tensor, dict[str, Tensor], Step]:
        """Backward of `loss_fn` over the step of each micro-batch of `inputs` (split by `sizes`),
        weighted by its share of the batch, so the gradients are those of the whole batch's mean
        loss; under DDP only the last micro-batch synchronises. Returns the batch's loss and
        readouts (detached) and the last micro-batch's step."""
        if len(sizes) == 1:  # the whole batch at once (no accumulation): no splitting, no weights
            step = make_step(*inputs)
            loss, readouts = loss_fn(step)
            self._steps.backward(self, loss)
            return self._watch(network, loss, step.index), readouts, step
        parts = [x.split(sizes) if x is not None else [None] * len(sizes) for x in inputs]
        total, logs = None, {}
        wrapper = self.ddp.get(network)
        for i, chunk in enumerate(zip(*parts)):
            weight = sizes[i] / sum(sizes)
            last = i == len(sizes) - 1
            with wrapper.no_sync() if wrapper is not None and not last else contextlib.nullcontext():
                step = make_step(*chunk)
                loss, readouts = loss_fn(step)
                self._steps.backward(self, loss * weight)
            part = self._watch(network, loss, step.index) * weight
            total = part if total is None else total + part
            for k, v in readouts.items():
                logs[k] = v * weight if k not in logs else logs[k] + v * weight
        assert total is not None
        return total, logs, step

    def configure_callbacks(self) -> list[L.Callback]:
        """Lightning refuses `accumulate_grad_batches`, gradient clipping and its
        GradientAccumulationScheduler for manual optimization, in a check that runs right after this
        hook: the loop does them itself, so they are set aside here and given back in `setup`."""
        trainer = self._trainer
        if trainer is not None:
            check_callbacks(trainer.callbacks)
        if trainer is not None and trainer.state.fn == "fit":
            self._lightning_flags = {"accumulate_grad_batches": trainer.accumulate_grad_batches,
                                     "gradient_clip_val": trainer.gradient_clip_val}
            trainer.accumulate_grad_batches, trainer.gradient_clip_val = 1, None
            trainer.callbacks[:] = [AccumulationSchedule.of(c) for c in trainer.callbacks]
        return []

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """`--trainer.gradient_clip_val` (and `gradient_clip_algorithm`) for G's and D's updates,
        through Lightning's clipping (after AMP's unscaling); the norm before clipping is logged."""
        clip = self.trainer.gradient_clip_val
        if not clip:
            return
        name = "g" if optimizer is self.optimizers()[0].optimizer else "d"
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads:  # logged by the step (a log call inside this hook would take over the step's logging)
            self._grad_norms[f"train/grad_norm_{name}"] = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
        self.clip_gradients(optimizer, gradient_clip_val=clip, gradient_clip_algorithm=self.trainer.gradient_clip_algorithm)

    def _watch(self, network: str, loss: Tensor, step: int) -> Tensor:
        """`loss`, detached, kept for the next finiteness check (`publish`: each logging interval, each
        epoch's end, every checkpoint), which costs no synchronization here. Under 16-mixed a GradScaler
        handles overflows itself (it skips the step and lowers its scale)."""
        loss = loss.detach()
        if self._grad_scaler() is None:
            self._losses.append((step, "D" if network == "discriminator" else "G", loss))
        return loss

    def _check_losses(self) -> None:
        if self._losses:
            self._raise_if_diverged(self._losses, torch.stack([loss.float().reshape(()) for *_, loss in self._losses]).cpu())
            self._losses = []

    def on_train_end(self) -> None:
        self._check_losses()  # after a last interval that ended before a logging step (max_steps)

    def _raise_if_diverged(self, losses: list[tuple[int, str, Tensor]], values: Tensor) -> None:
        """`Diverged`, naming the first non-finite one of `losses` (their `values` on the host)."""
        finite = torch.isfinite(values)
        if bool(finite.all()):
            return
        first = int((~finite).nonzero()[0])
        step, network, _ = losses[first]
        precision = self._trainer.precision if self._trainer is not None else "32-true"
        raise Diverged(
            f"training diverged at batch {step}: {network}'s loss is {values[first].item()}; lower the learning "
            f"rates (opt_d.lr={self.opt_d.lr:g}, opt_g.lr={self.opt_g.lr:g}) or train in fp32 (precision {precision}). "
            "last.ckpt keeps the last finite state"
        )

    def _labels(self, real: Tensor, labels: Tensor) -> Tensor | None:
        """What G and D are told of a real batch: its labels (conditional), its clusters (`latent.clusters`), or nothing."""
        if self.latent.clusters:
            return self_conditioning.nearest(self_conditioning.pixel_features(real), self.cluster_centroids)
        return labels if self.conditional else None

    def _find_clusters(self) -> None:
        """k-means of the training images (rank 0's, broadcast), unless a checkpoint brought them."""
        k = self.latent.clusters
        if not k or bool(self.cluster_centroids.any()):  # found before (a resume, fine-tuning)
            return
        found = None
        if self.trainer.is_global_zero:
            images = self_conditioning.training_images(self.trainer.datamodule, self_conditioning.SAMPLE, self.value_range)
            found = (*self_conditioning.kmeans(self_conditioning.pixel_features(images), k, self.training_seed), len(images))
        centroids, proportions, n = self.trainer.strategy.broadcast(found, src=0)
        self.cluster_centroids.copy_(centroids)  # in the buffer's own dtype and device (64-true, bf16-true, CUDA)
        for generator in (self.generator, self.generator_ema):
            if generator is not None:
                generator.proportions.copy_(proportions)
        rank_zero_info(f"clusters: {k} k-means clusters of {n:,} training images, proportions "
                       f"{min(proportions.tolist()):.3f} to {max(proportions.tolist()):.3f}")

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Lightning's, with a short path for a batch of plain tensors (`moved_batch`): it runs before every step."""
        moved = moved_batch(batch, device)
        return moved if moved is not None else super().transfer_batch_to_device(batch, device, dataloader_idx)

    def __setattr__(self, name: str, value: Any) -> None:
        """As nn.Module's; a plain value for a plain attribute (Lightning's `_current_fx_name`, set
        twice around each hook, about forty times a batch) skips its checks (`fast_plain_setattr`)."""
        if not fast_plain_setattr(self, name, value):
            super().__setattr__(name, value)

    def train(self, mode: bool = True) -> "GAN":
        """As nn.Module's, but the EMA generator stays in eval mode: it is only ever sampled from."""
        super().train(mode)
        if self.generator_ema is not None:
            self.generator_ema.eval()
        return self

    def update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * G, after every G update (`lit_gan.optim.EMA`); buffers are copied."""
        if self.generator_ema is None:
            return
        decay = self.ema_decay_now()
        with torch.no_grad():
            for ema, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
                ema.lerp_(p.detach(), 1.0 - decay)
            for ema, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
                ema.copy_(b)

    def ema_decay_now(self) -> float:
        """The EMA decay of this batch's G update (with the ramp-up, lower early on)."""
        return self.ema.decay_after((self.batches_seen // self.opt_d.steps + 1) * self.opt_g.steps)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.opt_g.build(self.generator.parameters()), self.opt_d.build(self.discriminator.parameters())]

    # ----- evaluation -------------------------------------------------------------------------
    def _evaluate(self, batch: Batch, prefix: str) -> None:
        self._val_logs = {}
        loss_d, readouts, loss_g = self.losses(batch[0], batch[1], "val")
        metrics = {"d_loss": loss_d, "g_loss": loss_g, **readouts, **self._val_logs}
        self.log_dict({f"{prefix}/{k}": v for k, v in metrics.items()}, sync_dist=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        with self._seeded(self._evaluation_seed(batch_idx)):
            self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        with self._seeded(self._evaluation_seed(batch_idx, "test")):
            self._evaluate(batch, "test")

    def _evaluation_seed(self, batch_idx: int, stage: Literal["val", "test"] = "val") -> int:
        """Validation/test noise: from the seed, the epoch and the batch, so a resumed run logs
        the same curves as an uninterrupted one; test draws other noise than validation."""
        offset = 500_009 if stage == "test" else 0
        return self.training_seed + 1_000_003 * (self.current_epoch + 1) + 1_009 * batch_idx + self.global_rank + offset

    def predict_step(self, labels: Tensor, batch_idx: int) -> Tensor:
        """Images for a batch of labels, with noise seeded by `sample_seed` and the batch index
        (under DDP, the index among all ranks' batches: ranks draw different noise)."""
        world = self._trainer.world_size if self._trainer is not None else 1
        seeded = torch.Generator().manual_seed(self.latent.sample_seed + batch_idx * world + self.global_rank)
        return self.generate(labels=labels, z=self.sample_z(len(labels), seeded))

    # ----- weights and checkpoints ------------------------------------------------------------
    def load_weights(self, path: str) -> list[str]:
        """Copy G's, D's (and EMA's) weights from another run's checkpoint, e.g. to fine-tune on a
        new dataset; returns the names skipped because their shape differs (another image size or
        number of classes)."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"weights_from: no checkpoint at {path}")
        own = (self.hparams.generator["class_path"], self.hparams.discriminator["class_path"])
        theirs = legacy.read(path, allowed=own)["state_dict"]
        mine = {k: v for k, v in self.state_dict().items() if not k.startswith(legacy.FIXED_NOISE)}
        fits = {k: v for k, v in theirs.items() if k in mine and v.shape == mine[k].shape}
        require(bool(fits), f"weights_from: nothing in {path} fits this model's networks; is it a lit_gan checkpoint of the same networks?")
        self.load_state_dict(fits, strict=False)
        skipped = sorted(k for k in mine if k not in fits)
        if skipped:
            rank_zero_info(f"weights_from {path}: {len(fits)} tensors loaded, {len(skipped)} kept fresh: {', '.join(skipped[:6])}")
        return skipped

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls, checkpoint_path: str | Path, map_location: Any = "cpu", strict: bool = True,
        allowed: Iterable[str] = (), **overrides: Any,
    ) -> GAN:
        """A model from any lit_gan checkpoint, this version's or an earlier one (upgraded), read
        with `weights_only=True`. Every variant is `GAN` with other defaults, all kept in the
        checkpoint's hyperparameters; networks outside lit_gan load only when named in `allowed`
        (`lit_gan.trust`). `overrides` replace hyperparameters."""
        if not Path(checkpoint_path).is_file():
            raise FileNotFoundError(f"no checkpoint at {checkpoint_path}; runs keep theirs in runs/<run>/checkpoints/last.ckpt")
        checkpoint = legacy.read(checkpoint_path, map_location, allowed)
        hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
        model = cls(**{**hparams, **overrides})
        model.on_load_checkpoint(checkpoint)
        model.load_state_dict(checkpoint["state_dict"], strict=strict)
        return model

    # ----- bookkeeping ------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self._lightning_flags:  # past Lightning's check (see configure_callbacks)
            for name, value in self._lightning_flags.items():
                setattr(self.trainer, name, value)
            self._lightning_flags = {}
        self.check_data(getattr(self.trainer, "datamodule", None))
        quiet_profiler(self.trainer)
        if type(self).transfer_batch_to_device is GAN.transfer_batch_to_device:  # lit_gan's short path, not a user's override
            warnings.filterwarnings("ignore", message=r"You have overridden `transfer_batch_to_device` in (both )?`LightningModule`")
        if stage == "fit":
            warn_if_bf16_is_emulated(self.trainer)
            skip_nvml_probe_without_driver()
            if self.generator_ema is not None:  # in eval mode on purpose (see `train`): not the slip Lightning warns of
                n = sum(1 for _ in self.generator_ema.modules())  # any other module in eval mode changes the count: still warned
                warnings.filterwarnings("ignore", message=rf"Found {n} module\(s\) in eval mode at the start of training")

    def check_data(self, data: Any) -> None:
        """Stops when G's output range does not match the data's (e.g. sigmoid vs [-1, 1]), or when
        a network's own `check_data` refuses the data (e.g. a packing D and the batch size)."""
        for network in (self.generator, self.discriminator):
            if data is not None and callable(getattr(network, "check_data", None)):
                network.check_data(data)
        value_range = tuple(getattr(data, "value_range", ()))
        require(
            not value_range or value_range == self.value_range,
            f"the generator produces images in {list(self.value_range)} but the data is scaled to "
            f"{list(value_range)}; set --data.init_args.value_range {list(self.value_range)}",
        )

    def on_train_start(self) -> None:
        self._steps.decide(self.trainer, self, GAN)
        self._d_params = [p for group in self.trainer.optimizers[1].param_groups for p in group["params"]]
        self._find_clusters()  # here, so a CPU-time budget (which starts before) counts it

    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        if hasattr(self, "_epoch_start"):  # not after a resume in mid-epoch
            self.log("train/epoch_seconds", time.perf_counter() - self._epoch_start, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuses non-finite weights, so no checkpoint (last or best) ever holds a diverged model."""
        self._check_losses()  # a divergence since the last check is named by its batch and loss
        broken = [k for k, v in checkpoint["state_dict"].items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if broken:
            raise Diverged(f"training diverged before batch {self.batches_seen}: non-finite weights in {', '.join(broken[:3])}; "
                           "not saved, the previous checkpoint is kept. Lower the learning rates or train in fp32")
        checkpoint["batches_seen"] = self.batches_seen
        if self._micro_batches:  # an interrupted accumulation: the resumed run finishes the same batch
            checkpoint["micro_batches"] = [tuple(t.cpu() for t in b) for b in self._micro_batches]
        checkpoint["run_id"] = self.run_id
        data = getattr(self._trainer, "datamodule", None)
        if callable(getattr(data, "cache_identity", None)):  # what a resume must continue on (plain data)
            checkpoint["data"] = json.loads(json.dumps(data.cache_identity(), default=str))
        if getattr(data, "class_names", None):  # label i's name, for exports and demos (any dataset, folders too)
            checkpoint["class_names"] = [str(name) for name in data.class_names]
        checkpoint["training_seed"] = self.training_seed
        checkpoint["terms"] = self.objective.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        legacy.upgrade_state(checkpoint)
        self.batches_seen = checkpoint.get("batches_seen", 0)
        self._micro_batches = [tuple(b) for b in checkpoint.get("micro_batches", [])]
        self.run_id = checkpoint.get("run_id", self.run_id)
        self.training_seed = checkpoint.get("training_seed", self.training_seed)
        self.objective.load_state_dict(checkpoint.get("terms", {}))
