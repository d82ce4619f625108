"""`lit-gan fit` with the Speed callback (channels_last and torch.compile with TorchInductor, the real
compiler) and a CPU-time Budget, set on the command line as a user would."""

from __future__ import annotations

import torch

import pytest

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
