"""The best checkpoint, by an evaluation metric in its own direction, and `checkpoints/last.ckpt`:
written after every epoch and when training is interrupted. Written atomically when the trainer has
`plugins=[lit_gan.checkpoint_io.SafeCheckpointIO()]` (as `lit-gan` gives it)."""

from __future__ import annotations

import signal
import threading
from typing import Any, Literal

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lit_gan.errors import Diverged
from lit_gan.metrics.registry import higher_is_better, qualities


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint keeping the best by ``monitor``, an evaluation metric
    (``val/<name>`` of :data:`lit_gan.metrics.registry.METRICS`), in the metric's own direction: the
    lowest ``val/fid`` or ``val/kid_mean``, the highest ``val/is_mean`` or ``val/precision``. A new
    rule is a new metric (one class and one registry line) monitored by name. ``mode`` only for
    values outside the registry (the classifier's ``val/acc``); for a metric it may only agree.
    Other arguments: ModelCheckpoint's."""

    def __init__(self, monitor: str | None = "val/fid", mode: Literal["min", "max"] | None = None, **kwargs: Any) -> None:
        super().__init__(monitor=monitor, mode=best_mode(monitor, mode), **kwargs)


def best_mode(monitor: str | None, mode: str | None = None) -> str:
    """"min" or "max" for keeping the best ``monitor``: its metric's direction, else ``mode``; one line
    saying how to fix a name that is no metric or is not a quality, or a ``mode`` that contradicts it."""
    if monitor is None:  # Lightning keeps the latest
        return mode or "min"
    try:
        better = higher_is_better(monitor)
    except KeyError:
        if mode is not None:
            return mode
        raise ValueError(f"--checkpoint.monitor {monitor} is not an evaluation metric; known: {', '.join(qualities())} "
                         "(add one: a Metric in lit_gan.metrics.METRICS; for another logged value give --checkpoint.mode "
                         "min or max)") from None
    if better is None:
        if mode is not None:
            return mode
        raise ValueError(f"--checkpoint.monitor {monitor} is a reference, a spread or a time, not a quality to keep the "
                         f"best of; monitor one of {', '.join(qualities())} (or give --checkpoint.mode min or max)")
    direction = "max" if better else "min"
    if mode is not None and mode != direction:
        raise ValueError(f"--checkpoint.mode {mode} contradicts {monitor}, whose best is its {direction}imum; leave "
                         "--checkpoint.mode unset (it follows the metric)")
    return direction


class LastCheckpoint(ModelCheckpoint):
    """The checkpoint to resume from: `last.ckpt` after every validation (or epoch without one),
    and on an exception, Ctrl-C (at the next batch boundary) or SIGTERM once training has started.
    (Lightning's `save_last` only refreshes `last.ckpt` when a top-k checkpoint improves.)"""

    def __init__(self, dirpath: str | None = None) -> None:
        super().__init__(
            dirpath=dirpath, filename="last", monitor=None, save_top_k=1, save_last=False,
            enable_version_counter=False, save_on_exception=True,
        )

    def _should_save_on_exception(self, trainer: L.Trainer) -> bool:
        return super()._should_save_on_exception(trainer) and trainer.global_step > 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Ctrl-C stops at the next batch boundary, so last.ckpt never holds half a step (D updated,
        G not) and a resume repeats nothing; a second Ctrl-C stops at once."""
        self._interrupted = False
        if threading.current_thread() is threading.main_thread():
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupted:
            raise KeyboardInterrupt
        self._interrupted = True
        rank_zero_info("\nCtrl-C: stopping after this batch and saving last.ckpt (Ctrl-C again to stop at once)")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if getattr(self, "_interrupted", False):
            raise KeyboardInterrupt  # between two batches: Lightning saves and exits 1

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        previous = getattr(self, "_previous_sigint", None)
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)
            self._previous_sigint = None
        super().teardown(trainer, pl_module, stage)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Save last.ckpt and say why (a diverged model is not saved: last.ckpt keeps the last finite one)."""
        if isinstance(exception, Diverged) or not self._should_save_on_exception(trainer):
            return
        path = self.format_checkpoint_name(metrics=self._monitor_candidates(trainer))
        self._save_checkpoint(trainer, path)
        cause = {SIGTERMException: "SIGTERM", KeyboardInterrupt: "Ctrl-C"}.get(type(exception), f"{type(exception).__name__}: {exception}")
        rank_zero_info(f"Stopped by {cause}: saved {path} to resume from")
