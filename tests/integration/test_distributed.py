"""DDP with 2 CPU processes (gloo) and mixed precision are trainer flags: `--trainer.strategy ddp`
selects `lit_gan.distributed.GANDDPStrategy`, which wraps G and D in separate DDP modules.

The 2-process runs check what a GAN researcher relies on: the ranks end with the same weights; they
equal those of Lightning's whole-module DDP with find_unused_parameters=True; and they equal a single
process trained on the global batch. The processes draw their noise seeded by rank, so a single
process cannot draw the same z by itself: that comparison gives every batch one z table (one row per
sample of the global batch) that the processes split, and feeds the single process the processes'
batches side by side.

Every 2-process run is a job of `ddp_script.py`, registered below: one launch (two imports of torch
and Lightning, one process group) runs them all, one Trainer after another, and each test reads what
its jobs left.
"""

from pathlib import Path

import lightning as L
import pytest
import torch

from lit_gan.cli import main
from lit_gan.metrics import Classifier
from lit_gan.models import GAN
from tests.conftest import tiny
from tests.fixtures import TINY_MODEL
from tests.integration import ddp_script
from tests.integration.ddp_script import job

FAST = [
    *TINY_MODEL,
    "--data=EmbeddedMNIST",
    "--data.init_args.batch_size=16",
    "--trainer.accelerator=cpu",
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=6",
    "--trainer.limit_val_batches=2",  # an int: 2 batches (1 would parse as 1.0, the whole 500-digit split)
    "--trainer.num_sanity_val_steps=0",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]
DDP = ["--trainer.strategy=ddp", "--trainer.devices=2"]
PLAIN_DDP = [("WGANGP", "32-true"), ("ACGAN", "bf16-mixed"), ("R3GAN", "32-true")]
for _model, _precision in PLAIN_DDP:
    job(__name__, f"cli_{_model}", "cli", args=[f"--model={_model}", *FAST, f"--trainer.precision={_precision}", *DDP])
job(__name__, "cli_classifier", "cli", args=["--model=lit_gan.metrics.Classifier", "--model.init_args.width=8", *FAST[len(TINY_MODEL):], *DDP])

SYNCS = {"model": "WGANGP", "scaler": True, "batches": 4,
         "kwargs": {"ema": {"decay": 0.9}, "opt_d": {"lr": 1e-4, "betas": [0.0, 0.9], "steps": 2}}}  # WGANGP's Adam, 2 D steps
BATCH_NORM = {"model": "DCGAN", "batches": 3, "kwargs": {"ema": {"decay": 0.9}}}
GLOBAL = {"model": "GAN", "global_noise": True, "batches": 4,
          "kwargs": {"conditional": True, "ema": {"decay": 0.9}, "objective": {"terms": {"aux_classifier": {}, "unrolled": {"steps": 2}}}}}
OLD = {"strategy": "ddp_find_unused_parameters_true"}  # Lightning's whole-module DDP
job(__name__, "syncs_new", "gan", settings=SYNCS)
job(__name__, "syncs_old", "gan", settings={**SYNCS, **OLD})
job(__name__, "batch_norm_new", "gan", settings=BATCH_NORM)
job(__name__, "batch_norm_old", "gan", settings={**BATCH_NORM, **OLD})
job(__name__, "global_ddp", "gan", settings=GLOBAL)
job(__name__, "global_single", "gan", settings={**GLOBAL, "devices": 1, "strategy": "auto"})
job(__name__, "sync_batchnorm", "gan", settings={"model": "DCGAN", "sync_batchnorm": True, "batches": 0, "kwargs": {"ema": {"decay": 0.9}}})


pytestmark = pytest.mark.xdist_group(ddp_script.ONE_PROCESS)


@pytest.fixture(scope="module")
def ddp(request, tmp_path_factory) -> ddp_script.Launch:
    return ddp_script.launch(request.session, tmp_path_factory)


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def same_parameters(ranks: list[dict], model: torch.nn.Module) -> bool:
    names = [name for name, _ in model.named_parameters()]
    return all(torch.equal(ranks[0]["state"][k], ranks[1]["state"][k]) for k in names) and len(names) > 0


@pytest.mark.parametrize("model, precision", PLAIN_DDP)
def test_plain_ddp_flag_trains_with_two_processes(ddp, model, precision):
    folder = ddp.check(f"cli_{model}")
    run = folder / "run"
    ckpt = checkpoint(run)
    # limit_train_batches counts per process; both processes shared one run directory
    assert ckpt["batches_seen"] == 6
    assert "strategy=gan_ddp" in (run / "config.yaml").read_text().replace(": ", "=")
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_000.png"]
    assert [p.name for p in folder.iterdir()] == ["run"]
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    # two processes trained, with GANDDPStrategy at the precision asked for, and ended with the same weights
    ranks = ddp.cli(f"cli_{model}")
    assert [r["info"]["global_rank"] for r in ranks] == [0, 1] and all(r["info"]["world_size"] == 2 for r in ranks)
    assert all(r["info"]["strategy"] == "GANDDPStrategy" and r["info"]["precision"] == precision for r in ranks)
    assert all(r["info"]["batches_seen"] == 6 for r in ranks)
    assert same_parameters(ranks, GAN.load_from_checkpoint(run / "checkpoints" / "last.ckpt"))


class AutocastProbe(L.Callback):
    """The dtypes of D's outputs in the training steps (`--trainer.callbacks+=` this class)."""

    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.hook = pl_module.discriminator.register_forward_hook(lambda module, args, out: self.dtypes.add(out.dtype))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.hook.remove()


@pytest.mark.parametrize("model", ["WGANGP", "ACGAN", "R3GAN"])
def test_bf16_mixed_precision_trains(tmp_path, model):
    cli = main(["fit", f"--model={model}", *FAST, "--trainer.precision=bf16-mixed", f"--runs_dir={tmp_path}",
                f"--trainer.callbacks+={AutocastProbe.__module__}.AutocastProbe"])
    assert cli.trainer.precision == "bf16-mixed"
    probe = next(c for c in cli.trainer.callbacks if isinstance(c, AutocastProbe))
    assert torch.bfloat16 in probe.dtypes  # D ran under bf16 autocast while training
    metrics = cli.trainer.callback_metrics
    assert torch.isfinite(metrics["train/d_loss"]) and torch.isfinite(metrics["train/g_loss"])
    if model == "WGANGP":
        assert metrics["train/gradient_penalty"] > 0
    if model == "R3GAN":
        assert metrics["train/r1"] > 0 and metrics["train/r2"] > 0
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())
    assert all(p.dtype == torch.float32 for p in cli.model.parameters())  # mixed: the weights stay fp32


def test_plain_ddp_flag_trains_the_metrics_classifier(ddp):
    folder = ddp.check("cli_classifier")
    state = checkpoint(folder / "run")["state_dict"]
    assert list(state) == list(Classifier(width=8).state_dict())  # wrapped whole, as Lightning does, and unwrapped
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    ranks = ddp.cli("cli_classifier")
    assert [(r["info"]["global_rank"], r["info"]["world_size"]) for r in ranks] == [(0, 2), (1, 2)]
    assert same_parameters(ranks, Classifier(width=8))


# ----- GANDDPStrategy, 2 processes ------------------------------------------------------------
def max_difference(a: dict, b: dict) -> float:
    return max((a["state"][k].float() - b["state"][k].float()).abs().max().item() for k in a["params"])


def test_gan_ddp_syncs_each_network_once_and_matches_find_unused_parameters(ddp):
    """WGAN-GP (gradient penalty through D's wrapper), EMA, 2 critic steps, fp16 with a GradScaler."""
    rank0, rank1 = ddp.gan("syncs_new")
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
    (old, _) = ddp.gan("syncs_old")
    assert old["info"]["strategy"] == "DDPStrategy" and old["info"]["whole_module_ddp"]
    assert all(torch.equal(old["state"][k], rank0["state"][k]) for k in old["state"])
    # checkpoints keep their keys (no `module.`) and load without DDP
    last = ddp.check("syncs_new") / "last.ckpt"
    ckpt = torch.load(last, weights_only=False)
    loaded = GAN.load_from_checkpoint(last)
    assert list(ckpt["state_dict"]) == list(loaded.state_dict())
    assert all(torch.equal(loaded.state_dict()[k], rank0["state"][k]) for k in rank0["params"])


def test_gan_ddp_gives_every_process_rank_0s_batch_norm_statistics_after_each_batch(ddp):
    """DCGAN (batch norm in G, D and the EMA generator): no wrapper broadcasts buffers in its forward;
    one broadcast after each batch leaves every rank with rank 0's running statistics, and rank 0
    trains exactly as with whole-module DDP (which broadcasts before each batch, so rank 1 ends with
    statistics of its own last batch)."""
    rank0, rank1 = ddp.gan("batch_norm_new")
    buffers = [k for k in rank0["state"] if k not in rank0["params"] and "running_mean" in k]
    assert {k.split(".")[0] for k in buffers} == {"generator", "discriminator", "generator_ema"}
    assert all(torch.equal(rank0["state"][k], rank1["state"][k]) for k in rank0["state"])
    old0, old1 = ddp.gan("batch_norm_old")
    assert all(torch.equal(old0["state"][k], rank0["state"][k]) for k in old0["state"])
    assert max((old0["state"][k] - old1["state"][k]).abs().max().item() for k in buffers) > 1e-4


def test_gan_ddp_matches_one_process_on_the_global_batch(ddp):
    """A class head (ACGAN's term), unrolled D and EMA: 2 processes x 8 images = 1 process x 16."""
    rank0, rank1 = ddp.gan("global_ddp")
    (single,) = ddp.gan("global_single")
    assert single["info"]["strategy"] == "SingleDeviceStrategy"
    assert max_difference(rank0, rank1) == 0.0
    assert max_difference(rank0, single) < 1e-6  # float rounding; unsynced look-ahead steps differ by ~1e-3
    start = tiny(GAN, num_classes=10, conditional=True, ema={"decay": 0.9}, objective=GLOBAL["kwargs"]["objective"])
    assert max(float((single["state"][k] - v).abs().max()) for k, v in start.state_dict().items() if k in single["params"]) > 1e-2


def test_sync_batchnorm_converts_the_networks_inside_their_wrappers(ddp):
    """`--trainer.sync_batchnorm true`: G's, D's and EMA's batch norm synced while fitting, plain again
    after (checkpoints and inference on one device). SyncBatchNorm runs on GPUs only: no batch here."""
    rank0, _ = ddp.gan("sync_batchnorm")
    assert rank0["info"]["norm_layers"] == ["SyncBatchNorm"] and rank0["info"]["wrappers"]
    assert "SyncBatchNorm" not in rank0["info"]["norm_layers_after"] and rank0["info"]["norm_layers_after"]
