"""Checkpoints written by `lit-gan fit`: loading, predict / validate / test on them, resuming.

One tiny CDCGAN is trained on EmbeddedMNIST for the whole module (`trained`); tests that change a
run directory (resume, the refused overwrite, evaluation side effects) train their own.
"""

from __future__ import annotations

import csv
import os
import signal
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import tiny
from tests.fixtures import TINY_CLI as TINY
from tests.fixtures import cli_env_in
from lit_gan.checkpoint_io import read_checkpoint
from lit_gan.cli import GANCLI, main
from lit_gan.metrics import Metric, registry
from lit_gan.models import CDCGAN

pytestmark = pytest.mark.usefixtures("cli_env")

CDCGAN_MNIST = [
    "--model", "CDCGAN", "--data", "EmbeddedMNIST",
    "--data.init_args.batch_size=16", "--data.init_args.predict_size=20",  # default val_size: the shipped classifier's data
]
METRICS = ("d_loss", "g_loss", "d_real", "d_fake")


@dataclass
class Run:
    dir: Path
    ckpt: Path  # <run>/checkpoints/last.ckpt
    config: Path  # a copy of <run>/config.yaml as fit wrote it (the run's own copy may be rewritten)
    model: CDCGAN  # the trained model, as it is in memory at the end of fit


def fit(runs_dir: Path, *extra: str) -> Run:
    cli = main(["fit", *CDCGAN_MNIST, *TINY, f"--runs_dir={runs_dir}", *extra])
    run = Path(cli.trainer.default_root_dir)
    config = runs_dir / f"{run.name}-fit-config.yaml"
    shutil.copy(run / "config.yaml", config)
    return Run(run, run / "checkpoints" / "last.ckpt", config, cli.model)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Run:
    runs = tmp_path_factory.mktemp("runs")
    with cli_env_in(runs):
        return fit(runs)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def csv_rows(path: Path) -> list[dict[str, str]]:
    """metrics.csv rows without their empty cells (CSVLogger widens the header as keys appear)."""
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


# --------------------------------------------------------------------------- loading
def test_load_from_checkpoint_restores_weights_buffers_and_batches_seen(trained: Run):
    loaded = CDCGAN.load_from_checkpoint(trained.ckpt, map_location="cpu")
    assert (loaded.hparams.generator["init_args"]["width"], loaded.hparams.latent["dim"]) == (8, 16)
    assert tuple(loaded.hparams.image_shape) == (1, 28, 28) and loaded.hparams.num_classes == 10

    expected, restored = trained.model.generator.state_dict(), loaded.generator.state_dict()
    assert expected.keys() == restored.keys()
    different = [k for k in expected if not torch.equal(expected[k].cpu(), restored[k])]
    assert not different, f"generator tensors not restored: {different}"
    fresh = tiny(CDCGAN, image_shape=(1, 28, 28), num_classes=10)
    assert not torch.equal(fresh.generator.state_dict()["project.0.weight"], restored["project.0.weight"])  # trained

    # The fixed sample noise and labels are stored in the checkpoint and come back unchanged.
    state = load(trained.ckpt)["state_dict"]
    assert torch.equal(state["grid_z"], trained.model.grid_z.cpu())
    assert torch.equal(loaded.grid_z, trained.model.grid_z.cpu())
    assert torch.equal(loaded.grid_labels, trained.model.grid_labels.cpu())
    assert loaded.grid_labels.tolist() == list(range(10)) * 8  # one column per class

    assert trained.model.batches_seen == 2  # limit_train_batches=2, one epoch
    assert load(trained.ckpt)["batches_seen"] == 2 and loaded.batches_seen == 2


# --------------------------------------------------------------------------- predict
def predict(run: Run) -> tuple[GANCLI, torch.Tensor]:
    """`lit-gan predict` on the run's checkpoint; LightningCLI drops trainer.predict's return
    value, the predict loop keeps it (one tensor per batch)."""
    cli = main(["predict", "--config", str(run.config), "--ckpt_path", str(run.ckpt)])
    return cli, torch.cat(cli.trainer.predict_loop.predictions)


def test_predict_draws_cycling_labels_reproducibly(trained: Run):
    cli, images = predict(trained)
    assert images.shape == (20, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0

    labels = cli.datamodule.predict_labels()
    assert labels.tolist() == [i % 10 for i in range(20)]
    # predict_step: the noise of batch i is seeded with sample_seed + i (batches of batch_size=16).
    model = CDCGAN.load_from_checkpoint(trained.ckpt, map_location="cpu").eval()
    with torch.no_grad():
        zs = [torch.randn(len(b), 16, generator=torch.Generator().manual_seed(i)) for i, b in enumerate(labels.split(16))]
        expected = torch.cat([model.generate(labels=b, z=z) for b, z in zip(labels.split(16), zs)])
        zero_labels = torch.cat([model.generate(labels=torch.zeros_like(b), z=z) for b, z in zip(labels.split(16), zs)])
    torch.testing.assert_close(images, expected)
    assert not torch.allclose(images, zero_labels)  # the labels reach the generator

    _, again = predict(trained)
    assert torch.equal(images, again)


# --------------------------------------------------------------------------- validate / test
@pytest.mark.parametrize("subcommand, prefix", [("validate", "val"), ("test", "test")])
def test_validate_and_test_log_metrics(trained: Run, subcommand: str, prefix: str):
    cli = main([subcommand, "--config", str(trained.config), "--ckpt_path", str(trained.ckpt)])
    metrics = cli.trainer.callback_metrics
    assert {f"{prefix}/{name}" for name in METRICS} <= set(metrics), sorted(metrics)
    assert all(torch.isfinite(metrics[f"{prefix}/{name}"]) for name in METRICS)
    assert 0 < metrics[f"{prefix}/d_real"] < 1 and 0 < metrics[f"{prefix}/d_fake"] < 1  # mean D(x): probabilities


def test_evaluating_a_run_keeps_its_config_and_training_log(tmp_path: Path):
    """validate / test / predict on a run's checkpoint must not rewrite the run's record: its
    config.yaml (else `lit-gan validate --config <run>/config.yaml` after a predict fails on the
    predict-only key return_predictions) and the training rows of metrics.csv."""
    run = fit(tmp_path)
    config, log = (run.dir / "config.yaml").read_bytes(), (run.dir / "metrics.csv").read_bytes()
    training = csv_rows(run.dir / "metrics.csv")
    assert {"train/epoch_seconds", "val/g_loss"} <= {key for row in training for key in row}
    problems = []
    for subcommand in ("validate", "test", "predict"):
        (run.dir / "config.yaml").write_bytes(config)  # each subcommand judged on its own
        (run.dir / "metrics.csv").write_bytes(log)
        main([subcommand, "--config", str(run.config), "--ckpt_path", str(run.ckpt)])
        if (run.dir / "config.yaml").read_bytes() != config:
            problems.append(f"{subcommand} rewrote config.yaml")
        now = csv_rows(run.dir / "metrics.csv") if (run.dir / "metrics.csv").is_file() else []
        lost = [row for row in training if not any(row.items() <= other.items() for other in now)]
        if lost:
            problems.append(f"{subcommand} dropped {len(lost)} of {len(training)} training rows from metrics.csv")
    assert not problems, problems


# --------------------------------------------------------------------------- resume / refuse
def test_fresh_fit_into_a_used_run_is_refused_and_resume_continues(tmp_path: Path, capsys: pytest.CaptureFixture):
    run = fit(tmp_path)
    checkpoints = {p.name: p.read_bytes() for p in (run.dir / "checkpoints").iterdir()}
    grid = (run.dir / "samples" / "epoch_000.png").read_bytes()
    capsys.readouterr()

    # A fresh fit into the same directory would overwrite last.ckpt: refused before training.
    with pytest.raises(SystemExit) as info:
        main(["fit", *CDCGAN_MNIST, *TINY, f"--trainer.default_root_dir={run.dir}"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("lit-gan: error:"), err
    assert "--ckpt_path" in err and str(run.dir) in err
    assert {p.name: p.read_bytes() for p in (run.dir / "checkpoints").iterdir()} == checkpoints
    assert (run.dir / "samples" / "epoch_000.png").read_bytes() == grid

    # Resuming from last.ckpt continues the same run in the same directory.
    cli = main(["fit", "--config", str(run.config), "--ckpt_path", str(run.ckpt), "--trainer.max_epochs", "2"])
    assert Path(cli.trainer.default_root_dir) == run.dir
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == [run.dir]  # no new run directory
    assert cli.trainer.current_epoch == 2 and cli.model.batches_seen == 4
    assert (run.dir / "samples" / "epoch_001.png").is_file()
    assert (run.dir / "samples" / "epoch_000.png").read_bytes() == grid
    resumed = load(run.ckpt)
    assert resumed["batches_seen"] == 4 and resumed["global_step"] == 8  # D + G step per batch, 4 batches
    assert torch.equal(resumed["state_dict"]["grid_z"], run.model.grid_z.cpu())  # same grid noise
    assert yaml.safe_load((run.dir / "config.yaml").read_text())["trainer"]["max_epochs"] == 2


def test_resume_from_the_run_config_keeps_logging(tmp_path: Path):
    """`fit --config <run>/config.yaml --ckpt_path last.ckpt` logs the new epochs next to the old
    ones: config.yaml must not switch logging off, and resuming must not drop earlier rows."""
    run = fit(tmp_path)
    saved_logger = yaml.safe_load(run.config.read_text())["trainer"]["logger"]
    first = csv_rows(run.dir / "metrics.csv")
    assert first and {row["epoch"] for row in first} == {"0"}
    main(["fit", "--config", str(run.config), "--ckpt_path", str(run.ckpt), "--trainer.max_epochs", "2"])
    rows = csv_rows(run.dir / "metrics.csv") if (run.dir / "metrics.csv").is_file() else []
    problems = []
    if saved_logger is False:
        problems.append("config.yaml has trainer.logger: false, so runs started from it log nothing")
    if not any(row["epoch"] == "1" for row in rows):
        problems.append("the resumed epoch (1) is missing from metrics.csv")
    lost = [row for row in first if not any(row.items() <= other.items() for other in rows)]
    if lost:
        problems.append(f"resuming dropped {len(lost)} of {len(first)} epoch-0 rows from metrics.csv")
    assert not problems, problems


def test_resuming_from_a_broken_checkpoint_is_one_line_without_unsafe_advice(trained: Run, tmp_path: Path, capsys):
    broken = tmp_path / "last.ckpt"
    broken.write_bytes(trained.ckpt.read_bytes()[:4000])  # truncated, as a kill mid-copy leaves it
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(trained.config), f"--ckpt_path={broken}", f"--trainer.default_root_dir={tmp_path / 'run'}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lit-gan: error: ") and len(err.splitlines()) == 1, err
    assert "last.ckpt is not a readable lit_gan checkpoint" in err and "weights_only=False" not in err


def test_a_checkpoint_of_another_model_class_is_refused(trained: Run, tmp_path: Path, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", "DCGAN", "--data", "EmbeddedMNIST", f"--ckpt_path={trained.ckpt}", f"--runs_dir={tmp_path}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "holds a CDCGAN (lit_gan.models.CDCGAN), not the --model DCGAN" in err and "--model CDCGAN" in err


def test_a_0_1_checkpoint_resumes_through_the_cli(tmp_path: Path):
    legacy = Path(__file__).resolve().parents[1] / "assets" / "legacy_cdcgan.ckpt"  # 1 epoch of 2 batches, lit_gan 0.1
    cli = main(["fit", "--model", "CDCGAN", "--data", "EmbeddedMNIST", "--data.init_args.batch_size=8",
                f"--ckpt_path={legacy}", "--trainer.max_epochs=2", "--trainer.limit_train_batches=2",
                "--trainer.limit_val_batches=1", "--evaluation.every_n_epochs=0", "--trainer.enable_progress_bar=false",
                "--trainer.accelerator=cpu", f"--runs_dir={tmp_path}"])
    assert cli.model.batches_seen == 4 and cli.model.hparams.generator["init_args"]["width"] == 4  # the checkpoint's
    assert read_checkpoint(Path(cli.trainer.default_root_dir) / "checkpoints" / "last.ckpt")["batches_seen"] == 4


def test_resuming_with_other_model_settings_says_they_are_ignored(trained: Run, tmp_path: Path):
    with pytest.warns(UserWarning, match=r"differ from the given ones and are ignored: .*opt_d.lr: 0.5 -> 0.0002") as record:
        cli = main(["fit", "--config", str(trained.config), "--model.init_args.opt_d.lr=0.5", f"--ckpt_path={trained.ckpt}",
                    f"--trainer.default_root_dir={tmp_path / 'run'}", "--trainer.max_epochs=1"])  # already done: no training
    ignored = next(str(w.message) for w in record if "are ignored" in str(w.message))
    assert "class_path" not in ignored, ignored  # lit_gan.nets.DCGANGenerator is lit_gan.nets.dcgan.DCGANGenerator
    assert cli.model.opt_d.lr == 2e-4  # what the checkpoint was trained with


def test_a_new_run_from_an_old_runs_config_gets_its_own_folder(trained: Run, tmp_path: Path, capsys):
    """config.yaml pins no output folder: `fit --config <A>/config.yaml` is a new run in a new folder
    (with or without --trainer.default_root_dir), and A's checkpoints stay as they were."""
    a = tmp_path / "A"
    shutil.copytree(trained.dir, a)
    before = {p.name: p.read_bytes() for p in (a / "checkpoints").iterdir()}
    saved = yaml.safe_load((a / "config.yaml").read_text())
    assert saved["trainer"]["default_root_dir"] is None
    assert saved["checkpoint"]["dirpath"] is None and saved["last_checkpoint"]["dirpath"] is None
    b = main(["fit", "--config", str(a / "config.yaml"), f"--trainer.default_root_dir={tmp_path / 'B'}"])
    assert Path(b.trainer.default_root_dir) == tmp_path / "B" and (tmp_path / "B" / "checkpoints" / "last.ckpt").is_file()
    c = main(["fit", "--config", str(a / "config.yaml"), f"--runs_dir={tmp_path / 'runs'}"])
    assert Path(c.trainer.default_root_dir).parent == tmp_path / "runs"
    assert (Path(c.trainer.default_root_dir) / "checkpoints" / "last.ckpt").is_file()
    assert {p.name: p.read_bytes() for p in (a / "checkpoints").iterdir()} == before
    b_last = (tmp_path / "B" / "checkpoints" / "last.ckpt").read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit):  # resuming A into B's folder would overwrite B's checkpoint
        main(["fit", "--config", str(a / "config.yaml"), "--ckpt_path", str(a / "checkpoints" / "last.ckpt"),
              f"--trainer.default_root_dir={tmp_path / 'B'}", "--trainer.max_epochs=2"])
    assert f"{tmp_path / 'B' / 'checkpoints'} already holds another run's checkpoints" in capsys.readouterr().err
    assert (tmp_path / "B" / "checkpoints" / "last.ckpt").read_bytes() == b_last

    # A config written before this fix pins A's checkpoint folder: refused before training, A kept.
    saved["checkpoint"]["dirpath"] = saved["last_checkpoint"]["dirpath"] = str(a / "checkpoints")
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(saved))
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(tmp_path / "old.yaml"), f"--trainer.default_root_dir={tmp_path / 'D'}"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1, err
    assert f"{a / 'checkpoints'} already holds another run's checkpoints" in err
    assert {p.name: p.read_bytes() for p in (a / "checkpoints").iterdir()} == before
    assert not (tmp_path / "D" / "checkpoints" / "last.ckpt").exists()


def test_resuming_on_other_data_is_refused_in_one_line(trained: Run, tmp_path: Path, capsys, fashion_mnist_data_dir: Path):
    before = trained.ckpt.read_bytes()
    cases = [(["--data.init_args.image_size=32"], "was trained on 1x28x28 images of 10 classes, but the data gives 1x32x32"),
             (["--data", "FashionMNIST", f"--data.init_args.data_dir={fashion_mnist_data_dir}"],
              "on other data than it was trained on (class: 'EmbeddedMNIST' -> 'FashionMNIST')")]
    for extra, expected in cases:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main(["fit", "--config", str(trained.config), "--ckpt_path", str(trained.ckpt), "--trainer.max_epochs=2", *extra])
        err = capsys.readouterr().err.strip()
        assert info.value.code == 2 and len(err.splitlines()) == 1 and expected in err, err
        assert f"--weights_from {trained.ckpt}" in err
    assert trained.ckpt.read_bytes() == before


def test_sigterm_while_validate_trains_its_classifier_stops_at_once(trained: Run, tmp_path: Path, monkeypatch, capsys):
    """Lightning checks SIGTERM only between batches; the classifier's own loop must stop too."""
    from lit_gan.metrics.classifier import Classifier

    steps, real = [], Classifier.loss_and_accuracy

    def step(self: Classifier, batch: tuple) -> tuple:
        steps.append(1)
        if len(steps) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as a cluster's preemption would
        return real(self, batch)

    monkeypatch.setattr(Classifier, "loss_and_accuracy", step)
    monkeypatch.setenv("LIT_GAN_CACHE", str(tmp_path / "cache"))  # no cached classifier: validate trains one
    capsys.readouterr()
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as info:
        main(["validate", "--config", str(trained.config), "--ckpt_path", str(trained.ckpt),
              "--evaluation.classifier_steps=1000"])  # not the shipped classifier's budget: one is trained
    assert info.value.code == 143 and len(steps) <= 4, len(steps)  # of 1,000 steps
    assert capsys.readouterr().err.strip().endswith("lit-gan: stopped by SIGTERM")
    assert signal.getsignal(signal.SIGTERM) == handler  # the command leaves the process's handler as it was


def test_a_fit_onto_a_full_disk_ends_in_one_line_and_keeps_the_last_checkpoint(tmp_path: Path, monkeypatch, capsys):
    import errno

    from lit_gan import checkpoint_io

    real, saves = checkpoint_io._write, []

    def full(f, chunk):  # the disk fills up during the second epoch's save
        saves.append(1)
        if len(saves) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, chunk)

    monkeypatch.setattr(checkpoint_io, "_write", full)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["fit", *CDCGAN_MNIST, *TINY, "--trainer.max_epochs=2", "--evaluation.every_n_epochs=0",
              f"--trainer.default_root_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 1 and err[-1].startswith("lit-gan: error: no space left to write"), err
    assert "it needs" in err[-1] and "resume from it" in err[-1]
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["epoch"] == 0  # epoch 0's, intact


def test_enable_checkpointing_false_writes_no_checkpoint_and_says_so(tmp_path: Path, capsys):
    cli = main(["fit", *CDCGAN_MNIST, *TINY, "--evaluation.every_n_epochs=0", "--trainer.enable_checkpointing=false",
                f"--trainer.default_root_dir={tmp_path / 'run'}"])
    assert cli.model.batches_seen == 2 and not list((tmp_path / "run").rglob("*.ckpt"))
    assert "Checkpoint:    none (--trainer.enable_checkpointing false)" in capsys.readouterr().out
    assert (tmp_path / "run" / "config.yaml").is_file()


class KidGain(Metric):
    """A rule of one's own for the best checkpoint (higher is better), read from the values before it."""

    higher_is_better = {"kid_gain": True}

    def compute(self, values: dict[str, float]) -> dict[str, float]:
        return {"kid_gain": -values["kid_mean"]}


@pytest.mark.parametrize(("monitor", "best_of"), [("val/kid_mean", min), ("val/kid_gain", max)])
def test_the_best_checkpoint_follows_the_direction_of_the_metric_it_monitors(tmp_path: Path, monkeypatch, monitor, best_of):
    """`--checkpoint.monitor val/kid_mean` keeps the lowest; a metric registered with higher_is_better
    (one class, one line) the highest. No --checkpoint.mode, none in the saved config."""
    monkeypatch.setitem(registry.METRICS, "kid_gain", KidGain())
    cli = main(["fit", *CDCGAN_MNIST, *TINY, "--trainer.max_epochs=2", "--evaluation.every_n_epochs=1",
                "--evaluation.settings.num_fake=100", "--evaluation.settings.num_real=200",
                "--evaluation.settings.kid_subset_size=50", "--checkpoint.monitor", monitor,
                f"--trainer.default_root_dir={tmp_path / 'run'}"])
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        scores = [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor)]
    best = cli.trainer.checkpoint_callback
    assert len(scores) == 2 and scores[0] != scores[1]  # keeping the other one (or the last) fails below
    assert best.monitor == monitor and best.mode == best_of.__name__
    assert best.best_model_score.item() == pytest.approx(best_of(scores))
    assert Path(best.best_model_path).name == f"best-epoch{scores.index(best_of(scores)):03d}.ckpt"
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["checkpoint"]
    assert (saved["monitor"], saved["mode"]) == (monitor, None)  # the direction is the metric's, not pinned


def test_an_unknown_monitor_stops_before_training_in_one_line(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", *CDCGAN_MNIST, *TINY, "--checkpoint.monitor", "val/fdi", f"--trainer.default_root_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1, err
    assert "--checkpoint.monitor val/fdi is not an evaluation metric; known: val/fid, val/kid_mean, val/is_mean" in err
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("metrics.csv"))  # nothing trained
