"""`lit-gan fit` with the Speed callback (channels_last and torch.compile with TorchInductor, the real
compiler) and a CPU-time Budget, set on the command line as a user would."""

from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch

from lit_gan import hardware
from lit_gan.cli import main
from lit_gan.models import DCGAN
from tests.fixtures import TINY_CLI as TINY
from tests.integration import ddp_script
from tests.integration.ddp_script import job

pytestmark = pytest.mark.usefixtures("cli_env")

FEW_VAL = ["--trainer.limit_val_batches=2", "--trainer.num_sanity_val_steps=0"]  # an int: 2 batches (TINY's 1 is 100%)


def test_a_real_fit_with_channels_last_compile_and_a_cpu_budget(tmp_path):
    run = tmp_path / "run"
    # 16 px: one stage less in G and D than 28 px, fewer kernels for TorchInductor to build (about 26, not 33);
    # FEW_VAL: full validation batches only (a last batch of 4 would compile G and D once more, for its shape)
    cli = main(["fit", "--model", "DCGAN", "--data", "EmbeddedMNIST", *TINY, *FEW_VAL, "--data.init_args.batch_size=16",
                "--data.init_args.image_size=16", "--trainer.limit_train_batches=6", "--trainer.max_epochs=100", "--evaluation.every_n_epochs=0",
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


# a job of tests/integration/ddp_script.py's one 2-process launch (see test_distributed.py)
job(__name__, "speed_budget", "cli", args=[
    "--model=DCGAN", "--data=EmbeddedMNIST", *TINY, *FEW_VAL, "--data.init_args.batch_size=16", "--trainer.limit_train_batches=1.0",
    "--trainer.max_epochs=100", "--evaluation.every_n_epochs=0", "--trainer.strategy=ddp", "--trainer.devices=2", *SPEED, *BUDGET])


@pytest.mark.xdist_group(ddp_script.ONE_PROCESS)
def test_ddp_ranks_snapshot_and_stop_together(request, tmp_path_factory):
    """Rank 0's clock decides for both ranks (a save is collective: a rank saving alone would hang)."""
    launch = ddp_script.launch(request.session, tmp_path_factory)
    run = launch.check("speed_budget") / "run"
    snapshot = torch.load(run / "checkpoints" / "budget-0.01min.ckpt", weights_only=True)
    assert 0.6 <= snapshot["budget"]["seconds"] < 60  # stopped at the budget, long before 100 epochs
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["batches_seen"] == snapshot["batches_seen"]  # both ranks stopped right after the snapshot
    ranks = launch.cli("speed_budget")
    assert [(r["info"]["global_rank"], r["info"]["world_size"]) for r in ranks] == [(0, 2), (1, 2)]
    assert ranks[0]["info"]["batches_seen"] == ranks[1]["info"]["batches_seen"] == last["batches_seen"]  # stopped together


def test_bf16_mixed_with_channels_last_compile_and_budget(tmp_path):
    cli = main(["fit", "--model", "DCGAN", "--data", "EmbeddedMNIST", *TINY, *FEW_VAL, "--trainer.precision=bf16-mixed",
                "--evaluation.every_n_epochs=0", f"--trainer.default_root_dir={tmp_path / 'run'}", *SPEED,
                "--trainer.callbacks.compile=true", "--trainer.callbacks.compile_options={backend: aot_eager}", *BUDGET])
    speed = next(c for c in cli.trainer.callbacks if type(c).__name__ == "Speed")
    assert speed.compiled and cli.model.batches_seen >= 1
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())


def test_bf16_warns_before_training_on_a_cpu_that_emulates_it(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    args = ["fit", "--model", "DCGAN", "--data", "EmbeddedMNIST", *TINY, *FEW_VAL, "--trainer.precision=bf16-mixed",
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
