"""`GAN`: the one training loop. Every variant is this class with other defaults.

Each training batch makes one discriminator step; every `d_steps` batches the generator
takes `g_steps` steps. `self.batches_seen` (saved with checkpoints) drives that schedule:
Lightning's `global_step` counts optimizer steps (two or more per batch here), so
`--trainer.max_steps` counts D and G updates together; prefer `max_epochs` or
`limit_train_batches`.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from lit_gan import losses
from lit_gan.augment import diff_augment, parse_policy
from lit_gan.models.checks import check_settings, require
from lit_gan.nets import ARCHITECTURES
from lit_gan.nets.blocks import Activation, Norm
from lit_gan.optim import Optim

Batch = tuple[Tensor, Tensor]


class GAN(L.LightningModule):
    """A GAN trained with alternating D/G updates (manual optimization).

    Defaults are seed 001's simple fully connected model: one hidden layer of 128 units,
    Adam(1e-3, betas 0.9/0.999), the non-saturating generator loss.

    Args:
        image_shape: (C, H, W); the CLI links it from the data.
        num_classes: classes in the data (0: no labels); the CLI links it from the data.
        conditional: feed labels to G and D (cGAN); needs labelled data.
        arch: network family in `lit_gan.nets.ARCHITECTURES` ("mlp", "dcgan").
        width: hidden units ("mlp") or channels of D's first convolution ("dcgan").
        latent_dim: size of z.
        noise: z ~ N(0, I) ("normal") or U(-1, 1) ("uniform").
        loss: "nonsaturating" (-log D(G(z))), "minimax" (log(1 - D(G(z)))), "wasserstein", "hinge".
        d_steps: discriminator steps per generator update (seed 004 uses 4).
        g_steps: generator steps per update (seed 000 trains G more often than D).
        label_flip: probability of swapping a real/fake target in D's loss (seed 001: 0.1).
        label_smoothing: one-sided smoothing, real targets become 1 - label_smoothing.
        g_dropout, d_dropout: dropout in G and D (seed 001's ablation: 0.2 and 0.5).
        d_norm: normalisation in D: "batch", "none" or "spectral".
        final_activation: G's output: "tanh" for data in [-1, 1], "sigmoid" for [0, 1].
        opt_g, opt_d: optimizer settings for G and D.
        gp_weight, clip_value: gradient penalty weight (WGAN-GP), critic weight clipping (WGAN).
        aux_classifier: ACGAN's class head on D (needs `conditional`).
        maxout: pieces per maxout unit in the fully connected networks (0: ReLU).
        minibatch_std: append the batch's feature standard deviation in D.
        unroll_steps: train G against D unrolled this many steps ahead.
        ema_decay: keep an exponential moving average of G (used outside training).
        augment: DiffAugment policy for D's inputs, e.g. "translation,cutout,color".
        weights_from: a checkpoint to start from (fine-tuning); tensors whose shape differs are skipped.
        sample_seed: seed of the fixed noise behind sample grids and `predict`.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 0,
        conditional: bool = False,
        arch: str = "mlp",
        width: int = 128,
        latent_dim: int = 100,
        noise: Literal["normal", "uniform"] = "normal",
        loss: losses.LossName = "nonsaturating",
        d_steps: int = 1,
        g_steps: int = 1,
        label_flip: float = 0.0,
        label_smoothing: float = 0.0,
        g_dropout: float = 0.0,
        d_dropout: float = 0.0,
        d_norm: Norm = "batch",
        final_activation: Activation = "tanh",
        opt_g: Optim = Optim(lr=1e-3, betas=(0.9, 0.999)),
        opt_d: Optim = Optim(lr=1e-3, betas=(0.9, 0.999)),
        gp_weight: float = 0.0,
        clip_value: float = 0.0,
        aux_classifier: bool = False,
        maxout: int = 0,
        minibatch_std: bool = False,
        unroll_steps: int = 0,
        ema_decay: float = 0.0,
        augment: str = "",
        weights_from: str | None = None,
        sample_seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.opt_g, self.opt_d = Optim.parse(opt_g), Optim.parse(opt_d)
        self.hparams.update(opt_g=asdict(self.opt_g), opt_d=asdict(self.opt_d))  # plain data in checkpoints
        check_settings(type(self).__name__, self.hparams)
        self.augment_policy = parse_policy(augment)
        make_g, make_d = ARCHITECTURES[arch]
        k = num_classes if conditional else 0
        self.generator = make_g(image_shape, latent_dim, k, width, g_dropout, final_activation, maxout=maxout)
        self.discriminator = make_d(
            image_shape, 0 if aux_classifier else k, width, d_dropout, d_norm,
            1 + (num_classes if aux_classifier else 0), maxout=maxout, minibatch_std=minibatch_std,
        )
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if ema_decay else None
        if weights_from:
            self.load_weights(weights_from)
        self.batches_seen = 0
        self.training_seed = int(os.environ.get("PL_GLOBAL_SEED", sample_seed))
        # Sample grid: 64 images; when conditional, one column per class (max 16), one noise per row.
        columns = min(num_classes, 16) if conditional else 8
        fixed = torch.Generator().manual_seed(sample_seed)
        z = self._noise(8, fixed).repeat_interleave(columns, 0) if conditional else self._noise(64, fixed)
        self.register_buffer("sample_z", z)
        labels = torch.arange(columns).repeat(8) if conditional else torch.zeros(64, dtype=torch.long)
        self.register_buffer("sample_labels", labels)

    def load_weights(self, path: str) -> list[str]:
        """Copy G's, D's (and EMA's) weights from another run's checkpoint, e.g. to fine-tune on a
        new dataset; returns the names skipped because their shape differs (another image size or
        number of classes)."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"weights_from: no checkpoint at {path}")
        theirs = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        mine = self.state_dict()
        fits = {k: v for k, v in theirs.items() if k in mine and v.shape == mine[k].shape and not k.startswith("sample_")}
        require(bool(fits), f"weights_from: nothing in {path} fits this model's networks; is it a lit_gan checkpoint of the same arch?")
        self.load_state_dict(fits, strict=False)
        skipped = sorted(k for k in mine if k not in fits and not k.startswith("sample_"))
        if skipped:
            rank_zero_info(f"weights_from {path}: {len(fits)} tensors loaded, {len(skipped)} kept fresh: {', '.join(skipped[:6])}")
        return skipped

    # ----- the discriminator's view -----------------------------------------------------
    def score(
        self, images: Tensor, labels: Tensor | None, params: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """D's adversarial logits and, with an auxiliary classifier (ACGAN), the cross-entropy of
        its class logits against `labels` (0 otherwise). Applies DiffAugment while training;
        `params` evaluates D with other weights (the unrolled D)."""
        if self.augment_policy and self.training:
            images = diff_augment(images, self.augment_policy)
        aux = self.hparams.aux_classifier
        args = (images, None if aux else labels)
        out = self.discriminator(*args) if params is None else functional_call(self.discriminator, params, args)
        if not aux:
            return out, images.new_zeros(())
        return out[:, 0], F.cross_entropy(out[:, 1:].float(), labels)

    # ----- sampling ---------------------------------------------------------------------
    def _noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z for `n` samples, drawn on CPU when a seeded `generator` is given (same z on any device)."""
        shape, device = (n, self.hparams.latent_dim), "cpu" if generator is not None else self.device
        if self.hparams.noise == "uniform":
            z = torch.rand(shape, generator=generator, device=device) * 2 - 1
        else:
            z = torch.randn(shape, generator=generator, device=device)
        return z.to(self.device)

    @property
    def conditional(self) -> bool:
        return bool(self.hparams.conditional)

    def generate(self, n: int | None = None, labels: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """Images from G for noise `z` (drawn when absent) and `labels` (conditional models).
        Outside training the EMA generator is used when there is one."""
        z = self._noise(n if n is not None else len(labels)) if z is None else z
        net = self.generator_ema if self.generator_ema is not None and not self.training else self.generator
        return net(z, labels if self.conditional else None)

    # ----- training ---------------------------------------------------------------------
    def _labels(self, labels: Tensor) -> Tensor | None:
        return labels if self.conditional else None

    def discriminator_loss(
        self, real: Tensor, fake: Tensor, labels: Tensor | None, params: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        hp = self.hparams
        s_real, class_real = self.score(real, labels, params)
        s_fake, class_fake = self.score(fake, labels, params)
        loss = losses.d_loss(hp.loss, s_real, s_fake, hp.label_flip, hp.label_smoothing) + class_real + class_fake
        logs = {"d_real": self._readout(s_real), "d_fake": self._readout(s_fake)}
        if hp.gp_weight and torch.is_grad_enabled() and params is None:
            penalty = losses.gradient_penalty(lambda x: self.score(x, labels)[0], real, fake, self._grad_scale())
            loss, logs["gradient_penalty"] = loss + hp.gp_weight * penalty, penalty.detach()
        if hp.aux_classifier:
            logs["class_loss"] = (class_real + class_fake).detach() / 2
        return loss, logs

    def generator_loss(self, fake: Tensor, labels: Tensor | None, real: Tensor | None = None) -> Tensor:
        """G's loss; against D unrolled `unroll_steps` ahead when set (needs the real batch)."""
        params = self._unrolled_discriminator(real, fake.detach(), labels) if self.hparams.unroll_steps and real is not None else None
        s_fake, class_fake = self.score(fake, labels, params)
        return losses.g_loss(self.hparams.loss, s_fake) + class_fake

    def _unrolled_discriminator(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> dict[str, Tensor]:
        """D's weights after `unroll_steps` plain gradient steps (at D's learning rate) on its loss,
        computed on copies: D itself is untouched. First-order: no gradient flows through the
        unrolled updates themselves, only through D's final weights' response to G's samples."""
        weights = {n: p.detach().clone().requires_grad_(True) for n, p in self.discriminator.named_parameters()}
        buffers = {n: b.clone() for n, b in self.discriminator.named_buffers()}
        for _ in range(self.hparams.unroll_steps):
            with torch.enable_grad():
                loss, _ = self.discriminator_loss(real, fake, labels, {**weights, **buffers})
                grads = torch.autograd.grad(loss, list(weights.values()), allow_unused=True)
            weights = {
                n: (w - self.opt_d.lr * g if g is not None else w).detach().requires_grad_(True)
                for (n, w), g in zip(weights.items(), grads)
            }
        return {**{n: w.detach() for n, w in weights.items()}, **buffers}

    def _grad_scale(self) -> float:
        """The GradScaler's scale under 16-mixed precision, else 1."""
        scaler = getattr(self._trainer.precision_plugin, "scaler", None) if self._trainer is not None else None
        return float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() else 1.0

    def _readout(self, scores: Tensor) -> Tensor:
        """Mean D(x): a probability for logistic losses, the raw critic score otherwise."""
        scores = scores.detach().float()
        return (torch.sigmoid(scores) if self.hparams.loss in losses.LOGISTIC else scores).mean()

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        """One D step, then G's steps when it is G's turn. All randomness in the step (noise, label
        flips, dropout, augmentation) is seeded by the batch count and the rank, so a resumed run
        repeats the uninterrupted one exactly."""
        seed = self.training_seed + self.batches_seen * self.trainer.world_size + self.global_rank
        cuda = self.device.type == "cuda"
        with torch.random.fork_rng(devices=[self.device.index or 0] if cuda else [], device_type="cuda"):
            torch.default_generator.manual_seed(seed)  # torch.manual_seed would probe every backend: ~1 ms
            if cuda:
                torch.cuda.manual_seed(seed)
            self._train_step(batch)

    def _train_step(self, batch: Batch) -> None:
        real, labels = batch[0], self._labels(batch[1])
        opt_g, opt_d = self.optimizers()
        self.batches_seen += 1
        g_turn = self.batches_seen % self.hparams.d_steps == 0
        with torch.set_grad_enabled(g_turn):  # keep G's graph only when G steps next
            fake = self.generate(len(real), labels)
        with self.toggled_optimizer(opt_d):
            loss_d, logs = self.discriminator_loss(real, fake.detach(), labels)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(loss_d)
            opt_d.step()
        self.after_discriminator_step()
        self.log_dict({"train/d_loss": loss_d.detach(), **{f"train/{k}": v for k, v in logs.items()}})
        if not g_turn:
            return
        for step in range(self.hparams.g_steps):
            with self.toggled_optimizer(opt_g):
                if step:
                    fake = self.generate(len(real), labels)
                loss_g = self.generator_loss(fake, labels, real)
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(loss_g)
                opt_g.step()
            self.update_ema()
        self.log("train/g_loss", loss_g.detach(), prog_bar=True)

    @torch.no_grad()
    def after_discriminator_step(self) -> None:
        """Runs after every D update: clips the critic's weights to [-clip_value, clip_value] (WGAN)."""
        if self.hparams.clip_value:
            for p in self.discriminator.parameters():
                p.clamp_(-self.hparams.clip_value, self.hparams.clip_value)

    @torch.no_grad()
    def update_ema(self) -> None:
        """ema <- decay * ema + (1 - decay) * G, after every G update; buffers are copied."""
        if self.generator_ema is None:
            return
        for ema, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            ema.lerp_(p.detach(), 1.0 - self.hparams.ema_decay)
        for ema, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema.copy_(b)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.opt_g.build(self.generator.parameters()), self.opt_d.build(self.discriminator.parameters())]

    # ----- evaluation -------------------------------------------------------------------
    def _evaluate(self, batch: Batch, prefix: str) -> None:
        real, labels = batch[0], self._labels(batch[1])
        fake = self.generate(len(real), labels)
        loss_d, readouts = self.discriminator_loss(real, fake, labels)
        loss_g = self.generator_loss(fake, labels)
        metrics = {"d_loss": loss_d, "g_loss": loss_g, **readouts}
        self.log_dict({f"{prefix}/{k}": v for k, v in metrics.items()}, sync_dist=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, labels: Tensor, batch_idx: int) -> Tensor:
        """Images for a batch of labels, with noise seeded by `sample_seed` and the batch index."""
        seeded = torch.Generator().manual_seed(self.hparams.sample_seed + batch_idx)
        return self.generate(labels=labels, z=self._noise(len(labels), seeded))

    # ----- bookkeeping ------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        self.check_data(getattr(self.trainer, "datamodule", None))

    def check_data(self, data: Any) -> None:
        """Stops when G's output range does not match the data's (e.g. sigmoid vs [-1, 1])."""
        value_range = tuple(getattr(data, "value_range", ()))
        expected = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}[self.hparams.final_activation]
        require(
            not value_range or value_range == expected,
            f"final_activation={self.hparams.final_activation!r} produces images in {list(expected)} but the data "
            f"is scaled to {list(value_range)}; set --data.init_args.value_range {list(expected)}",
        )

    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        if hasattr(self, "_epoch_start"):  # not after a resume in mid-epoch
            self.log("train/epoch_seconds", time.perf_counter() - self._epoch_start, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["batches_seen"] = self.batches_seen
        checkpoint["training_seed"] = self.training_seed

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.batches_seen = checkpoint.get("batches_seen", 0)
        self.training_seed = checkpoint.get("training_seed", self.training_seed)
