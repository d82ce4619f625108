"""Budget: stop after a time budget, snapshots when each given time is crossed, carried over a resume."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from lit_gan.callbacks import Budget, budget
from lit_gan.models import DCGAN
from tests.conftest import tiny
from tests.models.test_base import batches


class Ticker(Callback):
    """A fake CPU clock: every training batch costs 10 s, every checkpoint save 100 s."""

    def __init__(self) -> None:
        self.now = 1000.0

    def on_train_batch_end(self, *args) -> None:
        self.now += 10.0

    def on_save_checkpoint(self, *args) -> None:
        self.now += 100.0


def fit(tmp_path, callbacks, ckpt_path=None, epochs=100, **kwargs):
    model = tiny(DCGAN)
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=epochs, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=callbacks, **kwargs)
    trainer.fit(model, batches(), ckpt_path=ckpt_path)
    return trainer, model


@pytest.fixture
def ticker(monkeypatch):
    clock = Ticker()
    monkeypatch.setitem(budget.CLOCKS, "cpu", lambda: clock.now)
    return clock


def test_snapshots_at_the_given_times_and_a_stop_at_the_budget(tmp_path, ticker):
    callback = Budget(minutes=1, snapshots=[0.5, 1])  # 30 s and 60 s: after batches 3 and 6
    _, model = fit(tmp_path, [ticker, callback])  # 4 batches per epoch, 100 epochs allowed
    assert model.batches_seen == 6  # in the second of 100 allowed epochs
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["budget-0.5min.ckpt", "budget-1min.ckpt"]
    records = [torch.load(callback.saved[m], weights_only=True)["budget"] for m in (0.5, 1)]
    # the 100 s each save costs on the fake clock is not counted
    assert records == [{"clock": "cpu", "seconds": 30.0, "batches": 3, "images": 24},
                       {"clock": "cpu", "seconds": 60.0, "batches": 6, "images": 48}]

    # the budget used is logged (the stacked study reads train/cpu_minutes from metrics.csv)
    trainer, _ = fit(tmp_path / "logged", [ticker, Budget(minutes=1)])
    assert float(trainer.callback_metrics["train/cpu_minutes"]) == pytest.approx(1.0)


def test_snapshots_crossed_in_one_batch_are_all_written(tmp_path, ticker):
    callback = Budget(minutes=0.1, snapshots=[0.05, 0.1])  # 3 s and 6 s, both passed by the first batch
    _, model = fit(tmp_path, [ticker, callback])
    assert model.batches_seen == 1 and sorted(callback.saved) == [0.05, 0.1]


def test_a_resumed_run_continues_the_budget(tmp_path, ticker):
    first = Budget(minutes=1, snapshots=[0.25])
    trainer, _ = fit(tmp_path, [ticker, first], epochs=1)  # 4 batches: 40 s, then max_epochs stops it
    trainer.save_checkpoint(tmp_path / "stopped.ckpt")
    second = Budget(minutes=1, snapshots=[0.25])
    _, model = fit(tmp_path, [ticker, second], ckpt_path=tmp_path / "stopped.ckpt")
    assert model.batches_seen == 6  # 20 more seconds
    assert second.taken == [0.25] and list(second.saved) == []  # the 15 s snapshot was taken before the resume
    assert second.images == 48


@pytest.mark.parametrize("kwargs, message", [
    ({"minutes": 0}, "minutes must be a number > 0"),
    ({"minutes": 2, "snapshots": [1, 5]}, r"snapshots must be minutes in \(0, 2\].*\[5\]"),
    ({"minutes": 2, "clock": "gpu"}, "clock must be 'cpu' or 'wall'"),
])
def test_bad_settings_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Budget(**kwargs)
