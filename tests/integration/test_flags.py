"""Every Lightning Trainer flag, callback and logger a user can give `lit-gan fit` (issue 26, item 10).

Each case is one tiny in-process fit (DCGAN of width 8 on EmbeddedMNIST, 2 batches of 16, no
sanity check, no FID evaluation) with one flag, callback or logger set to a meaningful non-default
value. A case passes when the fit EITHER trains (returns normally, having trained at least one batch
or written a checkpoint) OR is refused with SystemExit and one stderr line starting with
"lit-gan: error:" that gives a reason, not a parser dump (as tests/integration/test_cli.py asks).
Any other exception, or a traceback, fails the case.

The lists are walked, not typed: `inspect.signature(Trainer.__init__)`,
`lightning.pytorch.callbacks.__all__` and `lightning.pytorch.loggers.__all__`. A name that has
neither a case below nor an entry (with its reason) in the matching NOT_APPLICABLE set fails
`test_every_*_has_a_case`, so a flag, callback or logger added by a new Lightning release cannot
slip by. Coverage is read from the cases' own arguments (`--trainer.<flag>`, the
`lightning.pytorch.callbacks.X` / `lightning.pytorch.loggers.X` class paths), never declared.

W&B runs `disabled` in the flag and callback cases (lit_gan's default W&B + CSV loggers are still
built and used, but nothing is written: an offline W&B run costs seconds per fit); the WandbLogger
case and tests/integration/test_tracking.py run it offline.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
from pathlib import Path

import pytest
import torch
import lightning.pytorch.callbacks as pl_callbacks
import lightning.pytorch.loggers as pl_loggers
from lightning.pytorch import Trainer

from lit_gan.cli import RUN_DIR_ENV, main
from tests.fixtures import TINY_CLI

pytestmark = pytest.mark.usefixtures("cli_env")

BASE = [
    "fit", "--model=DCGAN", "--data=EmbeddedMNIST", *TINY_CLI,
    "--data.init_args.batch_size=16", "--data.init_args.val_size=16",
    "--trainer.num_sanity_val_steps=0", "--evaluation.every_n_epochs=0",
]
"""Before every case's own arguments (which come last, so they win): 1 epoch of 2 batches of 16."""

CALLBACKS = "lightning.pytorch.callbacks"
LOGGERS = "lightning.pytorch.loggers"


def batch_size(batch) -> int:
    """ThroughputMonitor's `batch_size_fn` (given by import path): the images of an (images, labels) batch."""
    return len(batch[0])


def fit_started(trainer, pl_module) -> None:
    """LambdaCallback's `on_fit_start` (given by import path): checks it is called with the fit's objects."""
    assert trainer.model is pl_module


# --------------------------------------------------------------------------- (a) Trainer flags
# name -> the case's arguments after BASE; "{tmp}" is the test's tmp_path.
TRAINER_CASES: dict[str, list[str]] = {
    "accelerator=gpu": ["--trainer.accelerator=gpu"],  # no GPU on the test machine
    **{f"precision={p}": [f"--trainer.precision={p}"]
       for p in ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")},
    "logger=false": ["--trainer.logger=false"],
    "fast_dev_run=true": ["--trainer.fast_dev_run=true"],
    "max_epochs=2": ["--trainer.max_epochs=2"],
    "min_epochs=2": ["--trainer.min_epochs=2", "--trainer.max_epochs=2"],
    "max_steps=2": ["--trainer.max_steps=2", "--trainer.max_epochs=-1"],
    "min_steps=4": ["--trainer.min_steps=4"],
    "max_time=00:00:01:00": ["--trainer.max_time=00:00:01:00", "--trainer.max_epochs=-1",
                             "--trainer.max_steps=4"],
    # NB: on the command line "1" reaches these flags as 1.0 (jsonargparse), which Lightning reads as
    # 100% (all ~311 batches of EmbeddedMNIST), never as 1 batch: the cases use fractions or 2.
    "limit_train_batches=0.005": ["--trainer.limit_train_batches=0.005"],  # 1 of 311 batches
    "limit_val_batches=0": ["--trainer.limit_val_batches=0"],
    # a fit never runs test/predict: these check the flags are accepted (the `test` and `predict`
    # commands: tests/integration/test_test_and_predict.py)
    "limit_test_batches=2": ["--trainer.limit_test_batches=2"],
    "limit_predict_batches=2": ["--trainer.limit_predict_batches=2"],
    "overfit_batches=2": ["--trainer.overfit_batches=2"],
    "val_check_interval=0.5": ["--trainer.val_check_interval=0.5"],  # validation after each of the 2 batches
    "check_val_every_n_epoch=2": ["--trainer.check_val_every_n_epoch=2", "--trainer.max_epochs=2"],
    "num_sanity_val_steps=1": ["--trainer.num_sanity_val_steps=1"],
    "log_every_n_steps=1": ["--trainer.log_every_n_steps=1"],
    "enable_checkpointing=false": ["--trainer.enable_checkpointing=false"],
    "enable_progress_bar=true": ["--trainer.enable_progress_bar=true"],
    "enable_model_summary=true": ["--trainer.enable_model_summary=true"],
    "accumulate_grad_batches=2": ["--trainer.accumulate_grad_batches=2"],
    "gradient_clip_val=1.0,algorithm=norm": ["--trainer.gradient_clip_val=1.0", "--trainer.gradient_clip_algorithm=norm"],
    "gradient_clip_val=1.0,algorithm=value": ["--trainer.gradient_clip_val=1.0", "--trainer.gradient_clip_algorithm=value"],
    "deterministic=true": ["--trainer.deterministic=true"],
    "benchmark=true": ["--trainer.benchmark=true"],
    "inference_mode=false": ["--trainer.inference_mode=false"],
    "use_distributed_sampler=false": ["--trainer.use_distributed_sampler=false"],
    "profiler=simple": ["--trainer.profiler=simple"],
    "detect_anomaly=true": ["--trainer.detect_anomaly=true"],
    "barebones=true": ["--trainer.barebones=true"],
    # checkpoints written by Lightning's asynchronous IO instead of lit_gan's atomic one
    "plugins=AsyncCheckpointIO": ["--trainer.plugins=lightning.pytorch.plugins.io.AsyncCheckpointIO"],
    "sync_batchnorm=true": ["--trainer.sync_batchnorm=true"],  # the networks have BatchNorm layers
    "reload_dataloaders_every_n_epochs=1": ["--trainer.reload_dataloaders_every_n_epochs=1", "--trainer.max_epochs=2"],
    "default_root_dir": ["--trainer.default_root_dir={tmp}/my-run"],
    "enable_autolog_hparams=false": ["--trainer.enable_autolog_hparams=false"],
    # litmodels is not installed (and there is no network): the name must be accepted and do nothing
    "model_registry": ["--trainer.model_registry=lit-gan-dcgan"],
}

TRAINER_NOT_APPLICABLE = {
    "self": "not an argument",
    # multi-process values: tests/integration/test_distributed.py runs `--trainer.strategy=ddp
    # --trainer.devices=2` (2 CPU processes, gloo) in subprocesses; in this process they would start
    # a process group that outlives the test. One process ("auto"/1 device) is what every case here runs.
    "strategy": "multi-process: tests/integration/test_distributed.py",
    "devices": "multi-process: tests/integration/test_distributed.py",
    # more than one node needs more than one machine: covered nowhere in this suite
    "num_nodes": "multi-node: needs several machines (test_distributed.py runs 2 processes on one node)",
    # given as --trainer.callbacks+=...: the callback cases below
    "callbacks": "the callback cases (CALLBACK_CASES)",
}
"""Trainer arguments without a case here, and why. `logger` has the `logger=false` case and the
logger cases below."""


# --------------------------------------------------------------------------- (b) callbacks
def callback(name: str, *options: str) -> list[str]:
    """`--trainer.callbacks+=lightning.pytorch.callbacks.<name>` and its `--trainer.callbacks.<option>`s."""
    return [f"--trainer.callbacks+={CALLBACKS}.{name}", *(f"--trainer.callbacks.{o}" for o in options)]


CALLBACK_CASES: dict[str, list[str]] = {
    "BackboneFinetuning": callback("BackboneFinetuning", "unfreeze_backbone_at_epoch=1"),
    "BatchSizeFinder": callback("BatchSizeFinder", "mode=power", "steps_per_trial=1", "init_val=4", "max_trials=2"),
    "DeviceStatsMonitor": callback("DeviceStatsMonitor"),
    "EarlyStopping": callback("EarlyStopping", "monitor=train/d_loss", "patience=1"),
    "GradientAccumulationScheduler": callback("GradientAccumulationScheduler", "scheduling={0: 2}"),
    "LambdaCallback": callback("LambdaCallback", f"on_fit_start={__name__}.fit_started"),
    "LearningRateFinder": callback("LearningRateFinder", "min_lr=1e-5", "max_lr=1e-2", "num_training_steps=2"),
    "LearningRateMonitor": callback("LearningRateMonitor", "logging_interval=step"),
    "ModelCheckpoint": callback("ModelCheckpoint", "monitor=null", "every_n_train_steps=1", "dirpath={tmp}/extra-ckpts"),
    "ModelPruning": callback("ModelPruning", "pruning_fn=l1_unstructured", "amount=0.5"),
    "ModelSummary": [*callback("ModelSummary", "max_depth=2"), "--trainer.enable_model_summary=true"],
    "OnExceptionCheckpoint": callback("OnExceptionCheckpoint", "dirpath={tmp}/on-exception"),
    "RichModelSummary": [*callback("RichModelSummary", "max_depth=2"), "--trainer.enable_model_summary=true"],
    "RichProgressBar": [*callback("RichProgressBar", "leave=true"), "--trainer.enable_progress_bar=true"],
    "StochasticWeightAveraging": callback("StochasticWeightAveraging", "swa_lrs=1e-3", "swa_epoch_start=0.5"),
    "SpikeDetection": callback("SpikeDetection", "window=2", "warmup=1"),
    "ThroughputMonitor": callback("ThroughputMonitor", f"batch_size_fn={__name__}.batch_size"),
    "Timer": callback("Timer", "duration=00:00:01:00"),
    "TQDMProgressBar": [*callback("TQDMProgressBar", "refresh_rate=1"), "--trainer.enable_progress_bar=true"],
    "EMAWeightAveraging": callback("EMAWeightAveraging", "decay=0.9"),
    "WeightAveraging": callback("WeightAveraging"),  # an equal-weight average of every update
}
CALLBACK_CASES = {name: args for name, args in CALLBACK_CASES.items() if name in pl_callbacks.__all__}
"""(A callback a future Lightning drops is dropped here; one it adds fails test_every_callback_has_a_case.)"""

RICH = importlib.util.find_spec("rich") is not None
if not RICH:
    for name in ("RichModelSummary", "RichProgressBar"):
        CALLBACK_CASES.pop(name, None)

CALLBACK_NOT_APPLICABLE = {
    "Callback": "the base class: does nothing",
    "Checkpoint": "the base class of checkpoint callbacks: does nothing",
    "BaseFinetuning": "abstract: freeze_before_training / finetune_function raise NotImplementedError",
    "BasePredictionWriter": "abstract (write_on_batch_end / write_on_epoch_end), and for `predict`: "
                            "lit_gan's PredictionWriter (--predictions), tests/integration/test_test_and_predict.py",
    "ProgressBar": "abstract base of TQDMProgressBar / RichProgressBar",
    **({} if RICH else {"RichModelSummary": "rich is not installed", "RichProgressBar": "rich is not installed"}),
}


# --------------------------------------------------------------------------- (c) loggers
LOGGER_PACKAGES = {
    "CSVLogger": None,
    "TensorBoardLogger": "tensorboard",  # (or tensorboardX)
    "WandbLogger": "wandb",
    "MLFlowLogger": "mlflow",
    "CometLogger": "comet_ml",
    "NeptuneLogger": "neptune",
    "LitLogger": "litlogger",
}
"""The package each logger needs: a logger whose package is missing has no case."""


def installed(logger: str) -> bool:
    package = LOGGER_PACKAGES[logger]
    if logger == "TensorBoardLogger":
        return any(importlib.util.find_spec(p) is not None for p in ("tensorboard", "tensorboardX"))
    return package is None or importlib.util.find_spec(package) is not None


def logger(name: str, *options: str) -> list[str]:
    return [f"--trainer.logger={LOGGERS}.{name}", *(f"--trainer.logger.{o}" for o in options)]


LOGGER_CASES_ALL: dict[str, list[str]] = {
    "CSVLogger": logger("CSVLogger", "save_dir={tmp}/csv", "flush_logs_every_n_steps=1"),
    "TensorBoardLogger": logger("TensorBoardLogger", "save_dir={tmp}/tensorboard", "log_graph=false"),
    "WandbLogger": logger("WandbLogger", "save_dir={tmp}", "offline=true", "project=lit_gan-flags"),
    "MLFlowLogger": logger("MLFlowLogger", "tracking_uri=file:{tmp}/mlruns"),
    "CometLogger": logger("CometLogger", "offline_directory={tmp}/comet", "online=false"),
    "NeptuneLogger": logger("NeptuneLogger", "mode=offline"),
    "LitLogger": logger("LitLogger", "root_dir={tmp}/litlogger"),
    # two loggers at once, as a list
    "CSVLogger+TensorBoardLogger": [
        f"--trainer.logger+={LOGGERS}.CSVLogger", "--trainer.logger.save_dir={tmp}/csv",
        f"--trainer.logger+={LOGGERS}.TensorBoardLogger", "--trainer.logger.save_dir={tmp}/tensorboard",
    ],
}
LOGGER_CASES = {name: args for name, args in LOGGER_CASES_ALL.items()
                if all(n in pl_loggers.__all__ and installed(n) for n in name.split("+"))}

LOGGER_NOT_APPLICABLE = {
    "Logger": "the abstract base class",
    **{name: f"{LOGGER_PACKAGES[name]} is not installed"
       for name in pl_loggers.__all__ if name in LOGGER_PACKAGES and not installed(name)},
}


# --------------------------------------------------------------------------- coverage
CASES = {
    **{f"trainer.{name}": args for name, args in TRAINER_CASES.items()},
    **{f"callbacks.{name}": args for name, args in CALLBACK_CASES.items()},
    **{f"logger.{name}": args for name, args in LOGGER_CASES.items()},
}


def covered(pattern: str) -> set[str]:
    return {m for args in CASES.values() for a in args for m in re.findall(pattern, a)}


def test_every_trainer_argument_has_a_case():
    flags = set(inspect.signature(Trainer.__init__).parameters)
    missing = flags - covered(r"^--trainer\.(\w+)") - set(TRAINER_NOT_APPLICABLE)
    assert not missing, f"Trainer arguments with no case in {__name__} (add one, or a reason to TRAINER_NOT_APPLICABLE): {sorted(missing)}"
    assert not set(TRAINER_NOT_APPLICABLE) - flags, "TRAINER_NOT_APPLICABLE names arguments the Trainer no longer has"


def test_every_callback_has_a_case():
    missing = set(pl_callbacks.__all__) - covered(rf"{CALLBACKS}\.(\w+)") - set(CALLBACK_NOT_APPLICABLE)
    assert not missing, f"callbacks with no case in {__name__} (add one, or a reason to CALLBACK_NOT_APPLICABLE): {sorted(missing)}"


def test_every_installed_logger_has_a_case():
    unknown = set(pl_loggers.__all__) - set(LOGGER_PACKAGES) - set(LOGGER_NOT_APPLICABLE)
    assert not unknown, f"loggers unknown to {__name__} (add them to LOGGER_PACKAGES and LOGGER_CASES_ALL): {sorted(unknown)}"
    missing = set(pl_loggers.__all__) - covered(rf"{LOGGERS}\.(\w+)") - set(LOGGER_NOT_APPLICABLE)
    assert not missing, f"installed loggers with no case: {sorted(missing)}"


# --------------------------------------------------------------------------- the fits
@pytest.fixture
def torch_state(monkeypatch):
    """Leaves the process as it found it: deterministic=True and benchmark=True set torch's global
    flags (and CUBLAS_WORKSPACE_CONFIG), the precisions the default dtype; the CLI sets the run
    directory variable; W&B is off unless the case is the WandbLogger one."""
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    state = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.get_default_dtype(), torch.is_anomaly_enabled())
    yield
    torch.use_deterministic_algorithms(state[0], warn_only=state[1])
    torch.backends.cudnn.benchmark = state[2]
    torch.set_default_dtype(state[3])
    torch.set_anomaly_enabled(state[4])


@pytest.mark.parametrize("case", list(CASES))
def test_a_flag_trains_or_is_refused_in_one_line(case, tmp_path, capsys, monkeypatch, torch_state, record_property):
    if case == "logger.WandbLogger":
        monkeypatch.setenv("WANDB_MODE", "offline")
    args = [*BASE, f"--runs_dir={tmp_path / 'runs'}", *(a.replace("{tmp}", str(tmp_path)) for a in CASES[case])]
    capsys.readouterr()
    try:
        cli = main(args)
    except SystemExit as exit:
        err = capsys.readouterr().err.strip()
        assert exit.code not in (0, None), f"exit {exit.code}:\n{err}"
        assert "Traceback" not in err, err
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("lit-gan: error:"), f"expected one 'lit-gan: error:' line, got:\n{err}"
        assert "Namespace(" not in err and "Subtypes:" not in err, f"a parser dump, not a reason: {err}"  # as test_cli
        record_property("outcome", f"refused: {lines[0]}")
        return
    checkpoints = list(tmp_path.rglob("*.ckpt"))
    assert cli.model.batches_seen > 0 or checkpoints, "the fit returned without training a batch or writing a checkpoint"
    record_property("outcome", f"trains: {cli.model.batches_seen} batches, {len(checkpoints)} checkpoints")
