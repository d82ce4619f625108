"""DDP with 2 CPU processes (gloo) and mixed precision are trainer flags: `--trainer.strategy ddp`
selects `lit_gan.distributed.GANDDPStrategy`, which wraps G and D in separate DDP modules.

The 2-process runs of `ddp_script.py` check what a GAN researcher relies on: the ranks end with the
same weights; they equal those of Lightning's whole-module DDP with find_unused_parameters=True; and
they equal a single process trained on the global batch. The processes draw their noise seeded by
rank, so a single process cannot draw the same z by itself: that comparison gives every batch one
z table (one row per sample of the global batch) that the processes split, and feeds the single
process the processes' batches side by side.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lit_gan.cli import main
from lit_gan.metrics import Classifier
from lit_gan.models import GAN
from tests.conftest import tiny
from tests.fixtures import TINY_MODEL

SCRIPT = Path(__file__).with_name("ddp_script.py")

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


@pytest.mark.parametrize("model, precision", [("WGANGP", "32-true"), ("ACGAN", "bf16-mixed"), ("R3GAN", "32-true")])
def test_plain_ddp_flag_trains_with_two_processes(tmp_path, model, precision):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "lit_gan", "fit", f"--model={model}", *FAST, f"--trainer.precision={precision}",
           "--trainer.strategy=ddp", "--trainer.devices=2", f"--trainer.default_root_dir={run}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = checkpoint(run)
    # limit_train_batches counts per process; both processes shared one run directory
    assert ckpt["batches_seen"] == 6
    assert "strategy=gan_ddp" in (run / "config.yaml").read_text().replace(": ", "=")
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


def test_plain_ddp_flag_trains_the_metrics_classifier(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "lit_gan", "fit", "--model=lit_gan.metrics.Classifier", "--model.init_args.width=8",
           *FAST[len(TINY_MODEL):], "--trainer.strategy=ddp", "--trainer.devices=2", f"--trainer.default_root_dir={run}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    state = checkpoint(run)["state_dict"]
    assert list(state) == list(Classifier(width=8).state_dict())  # wrapped whole, as Lightning does, and unwrapped
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


# ----- GANDDPStrategy, 2 processes ------------------------------------------------------------
def fit(out: Path, **settings) -> list[dict]:
    """`ddp_script.py` with `settings`; what each rank saved (one entry per process)."""
    out.mkdir()
    done = subprocess.run([sys.executable, str(SCRIPT), str(out), json.dumps(settings)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(settings.get("devices", 2))]


def max_difference(a: dict, b: dict) -> float:
    return max((a["state"][k].float() - b["state"][k].float()).abs().max().item() for k in a["params"])


def test_gan_ddp_syncs_each_network_once_and_matches_find_unused_parameters(tmp_path):
    """WGAN-GP (gradient penalty through D's wrapper), EMA, 2 critic steps, fp16 with a GradScaler."""
    settings = {"model": "WGANGP", "scaler": True, "batches": 4, "kwargs": {"ema_decay": 0.9, "d_steps": 2}}
    rank0, rank1 = fit(tmp_path / "new", **settings)
    info = rank0["info"]
    assert info["strategy"] == "GANDDPStrategy" and not info["whole_module_ddp"]
    # separate DDP modules around the networks themselves, without the unused-parameter search
    assert info["wrappers"] == {name: ("DistributedDataParallel", False, True, False) for name in ("generator", "discriminator")}
    assert info["batches_seen"] == 4 and info["metrics"]["train/gradient_penalty"] > 0
    assert info["scale"] > 1.0  # the GradScaler served both optimizers throughout
    # the processes started from different weights: rank 0's were broadcast (EMA included) and stay in step
    assert rank0["params"] == rank1["params"] and any(k.startswith("generator_ema.") for k in rank0["params"])
    assert max_difference(rank0, rank1) == 0.0
    # Lightning's whole-module DDP with find_unused_parameters=True gives the very same weights and buffers
    (old, _) = fit(tmp_path / "old", **settings, strategy="ddp_find_unused_parameters_true")
    assert old["info"]["strategy"] == "DDPStrategy" and old["info"]["whole_module_ddp"]
    assert all(torch.equal(old["state"][k], rank0["state"][k]) for k in old["state"])
    # checkpoints keep their keys (no `module.`) and load without DDP
    ckpt = torch.load(tmp_path / "new" / "last.ckpt", weights_only=False)
    loaded = GAN.load_from_checkpoint(tmp_path / "new" / "last.ckpt")
    assert list(ckpt["state_dict"]) == list(loaded.state_dict())
    assert all(torch.equal(loaded.state_dict()[k], rank0["state"][k]) for k in rank0["params"])


def test_gan_ddp_gives_every_process_rank_0s_batch_norm_statistics_after_each_batch(tmp_path):
    """DCGAN (batch norm in G, D and the EMA generator): no wrapper broadcasts buffers in its forward;
    one broadcast after each batch leaves every rank with rank 0's running statistics, and rank 0
    trains exactly as with whole-module DDP (which broadcasts before each batch, so rank 1 ends with
    statistics of its own last batch)."""
    settings = {"model": "DCGAN", "batches": 3, "kwargs": {"ema_decay": 0.9}}
    rank0, rank1 = fit(tmp_path / "new", **settings)
    buffers = [k for k in rank0["state"] if k not in rank0["params"] and "running_mean" in k]
    assert {k.split(".")[0] for k in buffers} == {"generator", "discriminator", "generator_ema"}
    assert all(torch.equal(rank0["state"][k], rank1["state"][k]) for k in rank0["state"])
    old0, old1 = fit(tmp_path / "old", **settings, strategy="ddp_find_unused_parameters_true")
    assert all(torch.equal(old0["state"][k], rank0["state"][k]) for k in old0["state"])
    assert max((old0["state"][k] - old1["state"][k]).abs().max().item() for k in buffers) > 1e-4


def test_gan_ddp_matches_one_process_on_the_global_batch(tmp_path):
    """A class head (ACGAN's term), unrolled D and EMA: 2 processes x 8 images = 1 process x 16."""
    settings = {"model": "GAN", "global_noise": True, "batches": 4,
                "kwargs": {"conditional": True, "ema_decay": 0.9, "terms": {"aux_classifier": {}, "unrolled": {"steps": 2}}}}
    rank0, rank1 = fit(tmp_path / "ddp", **settings)
    (single,) = fit(tmp_path / "single", **settings, devices=1, strategy="auto")
    assert single["info"]["strategy"] == "SingleDeviceStrategy"
    assert max_difference(rank0, rank1) == 0.0
    assert max_difference(rank0, single) < 1e-6  # float rounding; unsynced look-ahead steps differ by ~1e-3
    start = tiny(GAN, num_classes=10, conditional=True, ema_decay=0.9, terms=settings["kwargs"]["terms"])
    assert max(float((single["state"][k] - v).abs().max()) for k, v in start.state_dict().items() if k in single["params"]) > 1e-2


def test_sync_batchnorm_converts_the_networks_inside_their_wrappers(tmp_path):
    """`--trainer.sync_batchnorm true`: G's, D's and EMA's batch norm synced while fitting, plain again
    after (checkpoints and inference on one device). SyncBatchNorm runs on GPUs only: no batch here."""
    rank0, _ = fit(tmp_path / "run", model="DCGAN", sync_batchnorm=True, batches=0, kwargs={"ema_decay": 0.9})
    assert rank0["info"]["norm_layers"] == ["SyncBatchNorm"] and rank0["info"]["wrappers"]
    assert "SyncBatchNorm" not in rank0["info"]["norm_layers_after"] and rank0["info"]["norm_layers_after"]
