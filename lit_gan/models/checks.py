"""Lightning's stock callbacks for a GAN: refused before any training when they cannot work
(with what to use instead), adapted when the loop does their work itself (accumulation).
(Settings check their own ranges, terms their combinations: `Term.check`.)"""

from __future__ import annotations

from typing import Any, Iterable

import lightning as L
from lightning.pytorch.callbacks import GradientAccumulationScheduler

UNSUITED_CALLBACKS = {
    "StochasticWeightAveraging": "averages the whole module, D included, and works with one optimizer; lit_gan "
                                 "keeps an average of G only: --model.init_args.ema.decay 0.999",
    "BackboneFinetuning": "unfreezes a transfer-learning model's `backbone`, which a GAN has not; to start from another "
                          "run's G and D use --weights_from CKPT",
    "LearningRateFinder": "searches one optimizer's learning rate against one loss; a GAN has two losses that pull against "
                          "each other: set --model.init_args.opt_g.lr and opt_d.lr (a sweep: sweeps/)",
    "SpikeDetection": "watches the one loss a training_step returns; the GAN loop has two, and stops by itself at the "
                      "first non-finite one",
}
"""Lightning's stock callbacks that cannot work for a GAN, with the reason and what to use instead."""


def check_callbacks(callbacks: Iterable[Any]) -> None:
    """Refuse, before training, a stock callback that cannot work for a GAN (`UNSUITED_CALLBACKS`)."""
    for callback in callbacks:
        reason = UNSUITED_CALLBACKS.get(type(callback).__name__)
        if reason is not None and type(callback).__module__.startswith("lightning."):
            raise ValueError(f"{type(callback).__name__} does not work for a GAN: it {reason}")


class AccumulationSchedule(GradientAccumulationScheduler):
    """Sets `trainer.accumulate_grad_batches` per epoch, as Lightning's does, without its refusal of
    manual optimization: `lit_gan.models.GAN` reads the value at every batch."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """(Lightning's checks concern its own automatic accumulation.)"""

    @classmethod
    def of(cls, callback: Any) -> Any:
        """`callback` as an AccumulationSchedule when it is Lightning's scheduler, else as it is."""
        return cls(callback.scheduling) if type(callback) is GradientAccumulationScheduler else callback
