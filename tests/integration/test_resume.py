"""Resuming from last.ckpt continues exactly; an interruption leaves a checkpoint to resume from."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from lit_gan.callbacks import LastCheckpoint
from lit_gan.cli import main
from lit_gan.data import EmbeddedMNIST
from lit_gan.models import DCGAN
from tests.conftest import tiny
from tests.fixtures import TINY_MODEL

ARGS = [
    "--model=CDCGAN",
    *TINY_MODEL,
    "--model.init_args.objective.terms={label_noise: {flip: 0.1}}",  # more randomness that must be replayed
    "--data=EmbeddedMNIST",
    "--data.init_args.batch_size=32",
    "--trainer.accelerator=cpu",
    "--trainer.limit_train_batches=3",
    "--trainer.limit_val_batches=2",  # an int: 2 batches (1 would parse as 1.0, the whole 500-digit split)
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.deterministic=true",
    "--seed_everything=7",
]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The uninterrupted reference run of the CLI tests: 3 epochs, every step logged."""
    run = tmp_path_factory.mktemp("straight") / "run"
    main(["fit", *ARGS, "--trainer.max_epochs=3", "--trainer.log_every_n_steps=1", f"--trainer.default_root_dir={run}"])
    return run


def test_interrupted_then_resumed_run_matches_uninterrupted_run(tmp_path, straight):
    split = tmp_path / "split"
    main(["fit", *ARGS, "--trainer.max_epochs=1", f"--trainer.default_root_dir={split}"])
    main(["fit", *ARGS, "--trainer.max_epochs=3", f"--trainer.default_root_dir={split}",
          f"--ckpt_path={split / 'checkpoints' / 'last.ckpt'}"])
    a, b = weights(straight), weights(split)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert sorted(p.name for p in (split / "samples").iterdir()) == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    # the logged validation curves match too: validation noise is seeded by epoch, not the global RNG
    assert validation_rows(split) == validation_rows(straight) and len(validation_rows(straight)) == 3


def validation_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        rows = [{k: v for k, v in row.items() if k.startswith("val/") and v != ""} for row in csv.DictReader(f)]
    return [row for row in rows if row]


def test_sigterm_during_training_leaves_a_resumable_checkpoint(tmp_path):
    run = tmp_path / "run"
    # 20 batches an epoch: epoch 0 ends (its sample grid appears) within seconds, 100 epochs take far longer
    cmd = [sys.executable, "-m", "lit_gan", "fit", *ARGS, "--trainer.limit_train_batches=20",
           "--trainer.max_epochs=100", f"--trainer.default_root_dir={run}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "samples" / "epoch_000.png").exists():
        time.sleep(0.5)  # wait until training is well under way
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out[-2000:]  # 128 + SIGTERM: the scheduler sees the interruption
    assert "stopped by SIGTERM; resume with --ckpt_path" in out
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["batches_seen"] > 0 and ckpt["epoch"] < 100
    cli = main(["fit", *ARGS, "--trainer.max_epochs", str(ckpt["epoch"] + 2), "--trainer.limit_train_batches=3", f"--trainer.default_root_dir={run}",
                f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}"])
    assert cli.model.batches_seen > ckpt["batches_seen"]


class SignalAt(L.Callback):
    """Sends `signum` to this process after batch `batch` of epoch 1: an interruption mid-epoch."""

    def __init__(self, signum: int, batch: int) -> None:
        self.signum, self.batch = signum, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == self.batch:
            os.kill(os.getpid(), self.signum)


def fit_in_process(root: Path, epochs: int, *callbacks: L.Callback, ckpt_path: Path | None = None) -> DCGAN:
    torch.manual_seed(0)
    model = tiny(DCGAN, objective={"terms": {"label_noise": {"flip": 0.1}}})
    trainer = L.Trainer(default_root_dir=root, accelerator="cpu", max_epochs=epochs, limit_train_batches=5,
                        limit_val_batches=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[LastCheckpoint(dirpath=str(root / "checkpoints")), *callbacks])
    trainer.fit(model, EmbeddedMNIST(batch_size=16), ckpt_path=ckpt_path)
    return model


@pytest.fixture(scope="module")
def straight_in_process(tmp_path_factory) -> DCGAN:
    """The uninterrupted reference of the mid-epoch tests: 2 epochs of 5 batches."""
    return fit_in_process(tmp_path_factory.mktemp("straight_in_process"), 2)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_run_interrupted_mid_epoch_resumes_exactly(tmp_path, signum, straight_in_process):
    straight = straight_in_process
    with pytest.raises(SystemExit):  # Lightning's SIGTERM exit / exit 1 after Ctrl-C, both after saving
        fit_in_process(tmp_path / "split", 2, SignalAt(signum, batch=2))
    last = tmp_path / "split" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["batches_seen"] == 8 and saved["epoch"] == 1  # stopped after 3 of the 5 batches of epoch 1
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 1, "batches": 3}]
    resumed = fit_in_process(tmp_path / "split", 2, ckpt_path=last)
    assert resumed.batches_seen == straight.batches_seen == 10
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name  # the same weights as the uninterrupted run


def test_resuming_after_a_kill_logs_each_step_once(tmp_path, straight):
    """A run killed after logging steps past its last checkpoint: the resumed run drops those rows
    and logs the steps again, once."""
    run = tmp_path / "run"
    main(["fit", *ARGS, "--trainer.max_epochs=1", "--trainer.log_every_n_steps=1", f"--trainer.default_root_dir={run}"])
    epoch_0 = tmp_path / "epoch_0.ckpt"
    epoch_0.write_bytes((run / "checkpoints" / "last.ckpt").read_bytes())
    main(["fit", *ARGS, "--trainer.max_epochs=2", "--trainer.log_every_n_steps=1", f"--trainer.default_root_dir={run}",
          f"--ckpt_path={epoch_0}"])  # epoch 1 logged; then, as if killed before its checkpoint, resume from epoch 0:
    main(["fit", *ARGS, "--trainer.max_epochs=2", "--trainer.log_every_n_steps=1", f"--trainer.default_root_dir={run}",
          f"--ckpt_path={epoch_0}"])
    steps = lambda r: [(row["epoch"], row["step"]) for row in csv.DictReader(open(r / "metrics.csv")) if row.get("train/d_loss")]  # noqa: E731
    first_two = [(epoch, step) for epoch, step in steps(straight) if int(epoch) < 2]  # the straight run trains 3 epochs
    assert steps(run) == first_two and len(steps(run)) == len(set(steps(run))) == 6
