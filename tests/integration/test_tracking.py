"""Real W&B in offline mode: what a run leaves on disk, and that nothing prompts or hangs; the
other loggers a run can be given (TensorBoard, CSV alone) and the default ones (W&B + CSV)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import wandb
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lit_gan import tracking
from lit_gan.cli import main
from tests.fixtures import TINY_CLI, TINY_MODEL

ARGS = [
    "--model=CDCGAN", *TINY_MODEL, "--data=EmbeddedMNIST",
    "--data.init_args.batch_size=32", "--trainer.accelerator=cpu", "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=2", "--trainer.log_every_n_steps=1",
    "--trainer.enable_progress_bar=false", "--evaluation.every_n_epochs=0",
]


TINY_FIT = ["fit", "--model=DCGAN", *TINY_CLI, "--data=EmbeddedMNIST", "--data.init_args.batch_size=16",
            "--trainer.log_every_n_steps=1", "--evaluation.every_n_epochs=0"]
"""One epoch of 2 tiny batches, no evaluation: for the logger choices below."""


def records(run_dir: Path) -> list[dict]:
    """The records of the offline run's .wandb log, read with W&B's own `wandb leet inspect`."""
    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    wandb_cli = shutil.which("wandb") or str(Path(sys.executable).parent / "wandb")
    done = subprocess.run([wandb_cli, "leet", "inspect", "--json", str(log)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_offline_run_holds_config_history_and_images(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_MODE", raising=False)  # no key, no WANDB_MODE: lit_gan picks offline itself
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("sys.argv", ["lit-gan"])
    wandb.finish()  # no run left over from earlier tests in this process
    cli = main(["fit", *ARGS, f"--runs_dir={tmp_path}"])
    run = Path(cli.trainer.default_root_dir)
    out = capsys.readouterr().out
    assert sum("W&B:" in line and "offline" in line for line in out.splitlines()) == 1
    recs = records(run)
    config = {}
    for r in recs:
        if r["type"] in ("config", "run"):
            config.update(r[r["type"]].get("update", r[r["type"]].get("config", {}).get("update", {})))
    assert config["cli"]["model"]["class_path"] == "lit_gan.models.CDCGAN"  # the resolved CLI config
    assert config["generator"]["class_path"].endswith(".DCGANGenerator") and config["conditional"] is True  # the model's hyperparameters
    history_keys = set()
    for r in recs:
        if r["type"] == "history":
            history_keys |= set(r["history"]["item"])
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "val/d_loss"} <= history_keys
    assert {"samples._type", "samples.count"} <= history_keys  # the sample grid, as an image
    images = list((run / "wandb").glob("offline-run-*/files/media/images/samples_*.png"))
    assert len(images) == 2  # one grid per epoch


def test_wandb_mode_is_respected_and_no_key_means_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking.wandb_mode() == ("disabled", None)
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    mode, reason = tracking.wandb_mode()
    assert mode == "offline" and "API key" in reason
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "https://127.0.0.1:9")  # a key but no server: offline, quickly
    mode, reason = tracking.wandb_mode()
    assert mode == "offline" and "unreachable" in reason


def test_an_empty_wandb_mode_counts_as_unset_and_an_unknown_one_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert tracking.wandb_mode()[0] == "offline" and "WANDB_MODE" not in os.environ  # wandb would refuse ''
    monkeypatch.setenv("WANDB_MODE", "ofline")
    with pytest.raises(ValueError, match="WANDB_MODE='ofline' is not a W&B mode: use one of online, offline, disabled"):
        tracking.wandb_mode()


def test_cli_never_waits_for_input_without_credentials(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), NETRC=str(tmp_path / "none"), PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    cmd = [sys.executable, "-m", "lit_gan", "fit", *ARGS, "--trainer.max_epochs=1", f"--runs_dir={tmp_path}"]
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "W&B: no API key" in done.stdout
    assert list(tmp_path.glob("*/wandb/offline-run-*"))
    # that one line says where the run is and how to upload it: none of W&B's own lines repeat it
    assert not [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("wandb: ")], done.stderr[-2000:]


KILLED_RUN = """
import os, sys
from lit_gan import tracking
tracking.wandb_logger(sys.argv[1], tracking.WandbSettings(), verbose=False)  # the first import of wandb
from wandb.sdk.artifacts.artifact import Artifact
from wandb.sdk.data_types._private import MEDIA_TMP
print(MEDIA_TMP.name, Artifact._TMP_DIR.name)
os._exit(0) if sys.argv[2] == "killed" else sys.exit(0)  # killed: no exit handlers run
"""


def test_wandb_temporary_folders_live_in_the_run(tmp_path):
    system_tmp = tmp_path / "tmp"
    system_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(system_tmp), "WANDB_MODE": "offline"}
    for ending in ("killed", "exits"):
        run = tmp_path / ending
        done = subprocess.run([sys.executable, "-c", KILLED_RUN, str(run), ending], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        folders = [Path(p) for p in done.stdout.split()]
        assert [p.parent for p in folders] == [run / "wandb"] * 2 and folders[0].name.endswith("wandb-media")
        assert all(p.is_dir() for p in folders) == (ending == "killed")  # a normal exit removes them
    assert list(system_tmp.glob("*wandb*")) == []  # nothing in the system temp dir, even from the killed process


@pytest.mark.usefixtures("cli_env")
def test_tensorboard_logger_gets_the_scalars_and_the_sample_grid(tmp_path):
    """`--trainer.logger TensorBoardLogger` (Lightning's own default logger): the event file holds
    the training and validation scalars and the sample grid, as an image."""
    tb = tmp_path / "tensorboard"
    cli = main([*TINY_FIT, f"--runs_dir={tmp_path}", "--trainer.logger=lightning.pytorch.loggers.TensorBoardLogger",
                f"--trainer.logger.save_dir={tb}"])
    (logger,) = cli.trainer.loggers
    assert isinstance(logger, TensorBoardLogger)
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = events.Tags()
    assert {"train/d_loss", "train/g_loss", "val/d_loss"} <= set(tags["scalars"])
    assert tags["images"] == ["samples"]
    (grid,) = events.Images("samples")
    assert [e.step for e in events.Scalars("train/d_loss")] == [0, 1]
    assert grid.step == 2 == cli.model.batches_seen  # batches, like the scalars (global_step, D + G steps, is 4)
    assert grid.encoded_image_string.startswith(b"\x89PNG") and (grid.width, grid.height) == (8 * 30 + 2,) * 2
    assert not list(Path(cli.trainer.default_root_dir).glob("wandb"))  # no W&B when another logger is chosen


@pytest.mark.usefixtures("cli_env")
def test_a_logger_without_images_gets_the_scalars_and_no_error(tmp_path):
    cli = main([*TINY_FIT, f"--runs_dir={tmp_path}", "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
                f"--trainer.logger.save_dir={tmp_path / 'csv'}"])
    (logger,) = cli.trainer.loggers
    assert type(logger) is CSVLogger
    header = (Path(logger.log_dir) / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/d_loss", "train/g_loss", "val/d_loss"} <= set(header)
    assert (Path(cli.trainer.default_root_dir) / "samples" / "epoch_000.png").is_file()  # written, just not logged


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize("logger", [[], ["--trainer.logger=true"]])
def test_default_and_logger_true_give_wandb_and_csv(tmp_path, logger):
    """Left alone or set to `true`, the loggers are still lit_gan's W&B + CSV pair (what W&B gets from a
    fit, the grids included: test_offline_run_holds_config_history_and_images)."""
    cli = main([*TINY_FIT[1:], f"--runs_dir={tmp_path}", *logger], run=False)
    assert [type(chosen) for chosen in cli.trainer.loggers] == [WandbLogger, tracking.ResumableCSVLogger]
