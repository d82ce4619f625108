"""`GAN`: the one training loop. Every variant is this class with other defaults.

Each training batch makes one discriminator step; every `d_steps` batches the generator
takes `g_steps` steps. `self.batches_seen` (saved with checkpoints) drives that schedule:
Lightning's `global_step` counts optimizer steps (two or more per batch here), so
`--trainer.max_steps` counts D and G updates together; prefer `max_epochs` or
`limit_train_batches`.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor

from lit_gan import losses
from lit_gan.nets import ARCHITECTURES
from lit_gan.nets.blocks import Activation, Norm
from lit_gan.optim import Optim

Batch = tuple[Tensor, Tensor]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


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
        sample_seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.opt_g, self.opt_d = Optim.parse(opt_g), Optim.parse(opt_d)
        name = type(self).__name__
        _check(arch in ARCHITECTURES, f"unknown arch {arch!r}; choose one of {sorted(ARCHITECTURES)}")
        _check(noise in ("normal", "uniform"), f"noise must be 'normal' or 'uniform', got {noise!r}")
        _check(loss in losses.LossName.__args__, f"unknown loss {loss!r}; choose one of {losses.LossName.__args__}")
        for key, value in dict(label_flip=label_flip, label_smoothing=label_smoothing, g_dropout=g_dropout, d_dropout=d_dropout).items():
            _check(0.0 <= value <= 1.0, f"{key} is a probability and must lie in [0, 1], got {value}")
        for key, value in dict(d_steps=d_steps, g_steps=g_steps, latent_dim=latent_dim, width=width).items():
            _check(isinstance(value, int) and value >= 1, f"{key} must be a positive integer, got {value!r}")
        _check(
            not conditional or num_classes >= 2,
            f"{name} is conditional and needs labelled data with at least 2 classes, but the data has "
            f"num_classes={num_classes}; use labelled data (e.g. --data EmbeddedMNIST, or an ImageFolder "
            "with one subfolder per class) or an unconditional model (e.g. --model DCGAN)",
        )
        _check(
            loss in losses.LOGISTIC or label_flip == label_smoothing == 0,
            f"label_flip and label_smoothing apply to the logistic losses only, not loss={loss!r}",
        )
        make_g, make_d = ARCHITECTURES[arch]
        k = num_classes if conditional else 0
        self.generator = make_g(image_shape, latent_dim, k, width, g_dropout, final_activation)
        self.discriminator = make_d(image_shape, k, width, d_dropout, d_norm, self.discriminator_outputs())
        self.batches_seen = 0
        rows = min(num_classes, 16) if conditional else 8
        fixed = torch.Generator().manual_seed(sample_seed)
        self.register_buffer("sample_z", self._noise(8, fixed).repeat(rows, 1) if conditional else self._noise(64, fixed))
        self.register_buffer("sample_labels", torch.arange(rows).repeat_interleave(8) if conditional else torch.zeros(64, dtype=torch.long))

    # ----- hooks a variant may override -------------------------------------------------
    def discriminator_outputs(self) -> int:
        """Number of D outputs: 1 adversarial logit (ACGAN adds class logits)."""
        return 1

    def score(self, images: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
        """D's adversarial logits for `images` and any extra loss term (0 here)."""
        return self.discriminator(images, labels), images.new_zeros(())

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
        """Images from G for noise `z` (drawn when absent) and `labels` (conditional models)."""
        z = self._noise(n if n is not None else len(labels)) if z is None else z
        return self.generator(z, labels if self.conditional else None)

    # ----- training ---------------------------------------------------------------------
    def _labels(self, labels: Tensor) -> Tensor | None:
        return labels if self.conditional else None

    def discriminator_loss(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        hp = self.hparams
        s_real, extra_real = self.score(real, labels)
        s_fake, extra_fake = self.score(fake, labels)
        loss = losses.d_loss(hp.loss, s_real, s_fake, hp.label_flip, hp.label_smoothing) + extra_real + extra_fake
        return loss, {"d_real": self._readout(s_real), "d_fake": self._readout(s_fake)}

    def generator_loss(self, fake: Tensor, labels: Tensor | None) -> Tensor:
        s_fake, extra = self.score(fake, labels)
        return losses.g_loss(self.hparams.loss, s_fake) + extra

    def _readout(self, scores: Tensor) -> Tensor:
        """Mean D(x): a probability for logistic losses, the raw critic score otherwise."""
        scores = scores.detach().float()
        return (torch.sigmoid(scores) if self.hparams.loss in losses.LOGISTIC else scores).mean()

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        real, labels = batch[0], self._labels(batch[1])
        opt_g, opt_d = self.optimizers()
        self.batches_seen += 1
        g_turn = self.batches_seen % self.hparams.d_steps == 0
        with torch.set_grad_enabled(g_turn):  # keep G's graph only when G steps next
            fake = self.generate(len(real), labels)
        with self.toggled_optimizer(opt_d):
            loss_d, readouts = self.discriminator_loss(real, fake.detach(), labels)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(loss_d)
            opt_d.step()
        self.after_discriminator_step()
        self.log_dict({"train/d_loss": loss_d.detach(), **{f"train/{k}": v for k, v in readouts.items()}}, prog_bar=False)
        if not g_turn:
            return
        for step in range(self.hparams.g_steps):
            with self.toggled_optimizer(opt_g):
                if step:
                    fake = self.generate(len(real), labels)
                loss_g = self.generator_loss(fake, labels)
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(loss_g)
                opt_g.step()
        self.log("train/g_loss", loss_g.detach(), prog_bar=True)

    def after_discriminator_step(self) -> None:
        """Called after every D update (WGAN clips the critic's weights here)."""

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
        data = getattr(self.trainer, "datamodule", None)
        value_range = tuple(getattr(data, "value_range", ()))
        expected = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}[self.hparams.final_activation]
        _check(
            not value_range or value_range == expected,
            f"final_activation={self.hparams.final_activation!r} produces images in {list(expected)} but the data "
            f"is scaled to {list(value_range)}; set --data.init_args.value_range {list(expected)}",
        )

    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        self.log("train/epoch_seconds", time.perf_counter() - self._epoch_start)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["batches_seen"] = self.batches_seen

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.batches_seen = checkpoint.get("batches_seen", 0)
