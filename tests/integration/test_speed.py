"""`lit-gan fit` with the Speed callback (channels_last and torch.compile with TorchInductor, the real
compiler) and a CPU-time Budget, set on the command line as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import lightning as L
import pytest
import torch

from lit_gan import hardware
from lit_gan.cli import main
from lit_gan.models import DCGAN
from tests.fixtures import TINY_CLI as TINY

pytestmark = pytest.mark.usefixtures("cli_env")


def test_a_real_fit_with_channels_last_compile_and_a_cpu_budget(tmp_path):
    run = tmp_path / "run"
    cli = main(["fit", "--model", "DCGAN", "--data", "EmbeddedMNIST", *TINY, "--data.init_args.batch_size=16",
                "--trainer.limit_train_batches=6", "--trainer.max_epochs=100", "--evaluation.every_n_epochs=0",
                f"--trainer.default_root_dir={run}",
                "--trainer.callbacks+=lit_gan.callbacks.Speed", "--trainer.callbacks.channels_last=true",
                "--trainer.callbacks.compile=true",
                "--trainer.callbacks+=lit_gan.callbacks.Budget", "--trainer.callbacks.minutes=0.02",
                "--trainer.callbacks.snapshots=[0.01,0.02]"])
    speed = next(c for c in cli.trainer.callbacks if type(c).__name__ == "Speed")
    assert speed.compiled  # TorchInductor built G and D on this machine
    assert cli.model.discriminator._compiled_call_impl is not None
    weights = [p for p in cli.model.discriminator.parameters() if p.dim() == 4 and p.shape[1] > 1]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    # compilation (tens of CPU-seconds) exceeds the 1.2 s budget: both snapshots come after the first batch
    snapshots = sorted(p.name for p in (run / "checkpoints").glob("budget-*.ckpt"))
    assert snapshots == ["budget-0.01min.ckpt", "budget-0.02min.ckpt"]
    checkpoint = torch.load(run / "checkpoints" / "budget-0.02min.ckpt", weights_only=True)
    assert checkpoint["budget"]["seconds"] >= 1.2 and checkpoint["budget"]["batches"] == cli.model.batches_seen
    reloaded = DCGAN.load_from_checkpoint(run / "checkpoints" / "budget-0.02min.ckpt")  # plain keys: loads uncompiled
    assert list(reloaded.state_dict()) == list(checkpoint["state_dict"])


SPEED = ["--trainer.callbacks+=lit_gan.callbacks.Speed", "--trainer.callbacks.channels_last=true"]
BUDGET = ["--trainer.callbacks+=lit_gan.callbacks.Budget", "--trainer.callbacks.minutes=0.01",
          "--trainer.callbacks.snapshots=[0.005,0.01]"]  # options go to the callback added last


def test_ddp_ranks_snapshot_and_stop_together(tmp_path):
    """Rank 0's clock decides for both ranks (a save is collective: a rank saving alone would hang)."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "lit_gan", "fit", "--model=DCGAN", "--data=EmbeddedMNIST", *TINY,
           "--data.init_args.batch_size=16", "--trainer.limit_train_batches=1.0", "--trainer.max_epochs=100",
           "--evaluation.every_n_epochs=0", "--trainer.strategy=ddp", "--trainer.devices=2",
           f"--trainer.default_root_dir={run}", *SPEED, *BUDGET]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    snapshot = torch.load(run / "checkpoints" / "budget-0.01min.ckpt", weights_only=True)
    assert 0.6 <= snapshot["budget"]["seconds"] < 60  # stopped at the budget, long before 100 epochs
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["batches_seen"] == snapshot["batches_seen"]  # both ranks stopped right after the snapshot


def test_bf16_mixed_with_channels_last_compile_and_budget(tmp_path):
    cli = main(["fit", "--model", "DCGAN", "--data", "EmbeddedMNIST", *TINY, "--trainer.precision=bf16-mixed",
                "--evaluation.every_n_epochs=0", f"--trainer.default_root_dir={tmp_path / 'run'}", *SPEED,
                "--trainer.callbacks.compile=true", "--trainer.callbacks.compile_options={backend: aot_eager}", *BUDGET])
    speed = next(c for c in cli.trainer.callbacks if type(c).__name__ == "Speed")
    assert speed.compiled and cli.model.batches_seen >= 1
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())


def test_bf16_warns_before_training_on_a_cpu_that_emulates_it(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    args = ["fit", "--model", "DCGAN", "--data", "EmbeddedMNIST", *TINY, "--trainer.precision=bf16-mixed",
            "--trainer.limit_train_batches=1", "--trainer.max_epochs=1", "--evaluation.every_n_epochs=0",
            f"--trainer.default_root_dir={tmp_path / 'run'}"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(args)
    assert sum("is emulated and much slower than fp32" in str(w.message) for w in caught) == 1
    assert "native bf16 no (emulated)" in hardware.cpu_features()  # what benchmark headers record


@pytest.mark.parametrize("native, precision", [(True, "bf16-mixed"), (False, "32-true")])
def test_no_bf16_warning_with_native_bf16_or_without_bf16(monkeypatch, native, precision):
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: native)
    trainer = L.Trainer(accelerator="cpu", precision=precision, logger=False, enable_checkpointing=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hardware.warn_if_bf16_is_emulated(trainer)
    assert not [w for w in caught if "emulated" in str(w.message)]
    assert ("native bf16 yes" in hardware.cpu_features()) == native
