"""DDP with 2 CPU processes and bf16 mixed precision are trainer flags: no code change."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lit_gan.cli import main
from tests.fixtures import TINY_MODEL

FAST = [
    *TINY_MODEL,
    "--data=EmbeddedMNIST",
    "--data.init_args.batch_size=16",
    "--trainer.accelerator=cpu",
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=6",
    "--trainer.limit_val_batches=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


@pytest.mark.parametrize("model", ["WGANGP", "ACGAN", "R3GAN"])
def test_plain_ddp_flag_trains_with_two_processes(tmp_path, model):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "lit_gan", "fit", f"--model={model}", *FAST,
           "--trainer.strategy=ddp", "--trainer.devices=2", f"--trainer.default_root_dir={run}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = checkpoint(run)
    # limit_train_batches counts per process; both processes shared one run directory
    assert ckpt["batches_seen"] == 6
    assert "strategy=ddp_find_unused_parameters_true" in (run / "config.yaml").read_text().replace(": ", "=")
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_000.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


@pytest.mark.parametrize("model", ["WGANGP", "ACGAN", "R3GAN"])
def test_bf16_mixed_precision_trains(tmp_path, model):
    cli = main(["fit", f"--model={model}", *FAST, "--trainer.precision=bf16-mixed", f"--runs_dir={tmp_path}"])
    assert cli.trainer.precision == "bf16-mixed"
    metrics = cli.trainer.callback_metrics
    assert torch.isfinite(metrics["train/d_loss"]) and torch.isfinite(metrics["train/g_loss"])
    if model == "WGANGP":
        assert metrics["train/gradient_penalty"] > 0
    if model == "R3GAN":
        assert metrics["train/r1"] > 0 and metrics["train/r2"] > 0
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())
