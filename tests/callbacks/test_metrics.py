"""The Evaluation callback: in Lightning runs under validate/test and every n epochs of a fit (also
under DDP), the files it writes, what it logs, what the best checkpoint sees, the extractor it picks,
its arguments and defaults, and how the CLI exposes them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from PIL import Image

from lit_gan.callbacks import BestCheckpoint, Evaluation, metrics as callback_module
from lit_gan.callbacks.metrics import TEST_SEED_OFFSET
from lit_gan.data import CIFAR10, EmbeddedMNIST
from lit_gan.data.base import UInt8Images
from lit_gan.cli import RUN_DIR_ENV, main
from lit_gan.metrics import Settings
from lit_gan.models import GAN
from tests.conftest import tiny
from tests.metrics.conftest import N, evaluation, same
from tests.metrics.fakes import Noise, RealDigits

DDP_SCRIPT = Path(__file__).with_name("metrics_ddp_script.py")


class ImageLogger(CSVLogger):
    """A CSV logger that can show images (like W&B's): records what it is sent."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, name="", version="")
        self.images: list[tuple[str, str]] = []

    def log_image(self, key: str, images: list, step: int | None = None) -> None:
        self.images += [(key, str(image)) for image in images]


def trainer(root: Path, callbacks: list, **kwargs) -> L.Trainer:
    options = dict(default_root_dir=root, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                   enable_model_summary=False, enable_checkpointing=False, limit_val_batches=1, limit_test_batches=1)
    return L.Trainer(callbacks=callbacks, **{**options, **kwargs})


def test_real_digits_score_like_real_data_under_validate_and_test(tmp_path, mnist, cache_dir, trained_cache):
    """Held-out real digits as a conditional "generator": small FID, all 10 classes, the asked labels;
    fp32 metrics under bf16-mixed too; files, protocol and no trace in the model."""
    model = RealDigits(mnist.val_set.images, mnist.val_set.labels, conditional=True)
    keys = set(model.state_dict())
    callback = evaluation(cache_dir)
    logger = ImageLogger(tmp_path)
    validate = trainer(tmp_path, [callback], logger=logger)
    validate.validate(model, datamodule=mnist)
    metrics = {k: float(v) for k, v in validate.callback_metrics.items()}
    m, protocol = callback.last.metrics, callback.last.protocol

    noise = evaluation(cache_dir).evaluate(Noise(mnist.val_set.images, mnist.val_set.labels), mnist).metrics
    assert m["fid"] < 0.05 * noise["fid"] and m["precision"] > 0.7 > noise["precision"]
    assert m["classes_covered"] == 10 and m["class_kl"] < 0.05
    assert m["label_accuracy"] > 0.8 and abs(m["label_accuracy"] - protocol["classifier_accuracy"]) < 0.08
    assert len([k for k in m if k.startswith("fid_class/")]) == 10 and m["fid_class_mean"] > 0
    per_label = [m[f"label_accuracy_class/{c}"] for c in range(10)]
    assert min(per_label) > 0.5 and sum(per_label) / 10 == pytest.approx(m["label_accuracy"], abs=0.03)
    assert m["is_mean"] == pytest.approx(m["is_real_mean"], rel=0.15) and m["is_real_mean"] > 2 > noise["is_mean"]
    assert m["nn_distance"] == pytest.approx(m["nn_distance_real"], rel=0.25)  # held out: not memorised
    assert metrics == pytest.approx({f"val/{k}": v for k, v in m.items()})

    # the protocol travels with the numbers
    assert protocol["extractor"].startswith("classifier") and protocol["num_fake"] == N
    assert protocol["num_real"] == len(mnist.train_set) and protocol["real_split"] == "train"
    assert protocol["image_shape"] == [1, 28, 28] and protocol["dataset"]["class"] == "EmbeddedMNIST"
    assert protocol["classifier_accuracy"] == trained_cache[1]["test_accuracy"] == m["classifier_accuracy"]
    saved = json.loads((tmp_path / "metrics" / "validate.json").read_text())
    assert saved["metrics"]["fid"] == m["fid"] and saved["protocol"]["num_real"] == protocol["num_real"]
    with Image.open(tmp_path / "neighbours" / "validate.png") as picture:  # 8 rows: sample + 3 nearest
        assert picture.size == (4 * 30 + 2, 8 * 30 + 2)
    assert logger.images == [("neighbours", str(tmp_path / "neighbours" / "validate.png"))]
    assert logger.experiment.hparams["evaluation_protocol"]["num_fake"] == N  # the protocol, as the run's hyperparameters

    # the generator ran in eval mode (the EMA generator of a GAN); the model gained nothing
    assert model.calls_in_training_mode and not any(model.calls_in_training_mode)
    assert set(model.state_dict()) == keys and not list(model.children())

    # bf16-mixed: the same numbers (autocast is off inside)
    bf16 = trainer(tmp_path, [callback], precision="bf16-mixed")
    bf16.validate(model, datamodule=mnist)
    assert same(callback.last.metrics) == same(m)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # even called from inside an autocast region
        assert same(callback.evaluate(model, mnist).metrics) == same(m)

    # `test` logs test/*: against the test split (EmbeddedMNIST's is its val split: said), other samples
    bf16.test(model, datamodule=mnist)
    t = callback.last
    assert (t.protocol["real_split"], t.protocol["test_is_val"], t.protocol["num_real"]) == ("test", True, len(mnist.val_set))
    assert float(bf16.callback_metrics["test/fid"]) == pytest.approx(t.metrics["fid"]) and t.metrics["fid"] != m["fid"]
    assert t.metrics["fid"] < 0.05 * noise["fid"] and t.metrics["classes_covered"] == 10
    saved = json.loads((tmp_path / "metrics" / "test.json").read_text())
    assert (saved["stage"], saved["protocol"]["real_split"], saved["metrics"]["fid"]) == ("test", "test", t.metrics["fid"])


def test_test_takes_the_datas_own_test_split_and_validate_its_real_split(tmp_path, mnist, cache_dir):
    """Data with a test split of its own: `test` scores against it (no warning), with other seeds
    than validation, which keeps its configured `real_split`."""
    data = EmbeddedMNIST()
    data.setup()
    data.test_set = UInt8Images(data.train_set.images[:300], data.train_set.labels[:300])  # a test split of its own
    model = RealDigits(mnist.val_set.images, mnist.val_set.labels)
    callback = evaluation(cache_dir, classifier_epochs=None, classifier_steps=20, real_split="val", num_fake=200)
    assert callback.settings_for("val") is callback.settings
    run = trainer(tmp_path, [callback])
    run.validate(model, datamodule=data)
    val = callback.last
    run.test(model, datamodule=data)
    test = callback.last
    assert (val.protocol["real_split"], val.protocol["num_real"], val.protocol["settings"]["seed"]) == ("val", 500, 0)
    assert (test.protocol["real_split"], test.protocol["num_real"], test.protocol["test_is_val"]) == ("test", 300, False)
    assert test.protocol["settings"]["seed"] == TEST_SEED_OFFSET
    assert test.metrics["is_real_mean"] != val.metrics["is_real_mean"] and test.metrics["fid"] != val.metrics["fid"]
    assert float(run.callback_metrics["test/fid"]) == pytest.approx(test.metrics["fid"])
    with pytest.raises(ValueError, match="stage must be 'val' or 'test', got 'train'"):
        callback.settings_for("train")  # type: ignore[arg-type]


def test_val_fid_is_there_for_model_checkpoint_every_n_epochs(tmp_path, mnist, cache_dir):
    """A real GAN fit: evaluation at epoch 2 only (not in the sanity check), the best checkpoint
    monitors val/fid (the lowest), holds no feature network, and validating it gives the same FID."""
    torch.manual_seed(0)
    model = tiny(GAN, ema={"decay": 0.9})
    checkpoint = BestCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/fid", every_n_epochs=2)
    assert checkpoint.mode == "min"
    callback = evaluation(cache_dir, num_fake=200, num_real=500, every_n_epochs=2)
    data = type(mnist)(batch_size=32)
    fit = trainer(tmp_path, [callback, checkpoint], max_epochs=2, limit_train_batches=3, enable_checkpointing=True)
    fit.fit(model, datamodule=data)
    assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == ["epoch_001.json"]
    assert checkpoint.best_model_score == pytest.approx(callback.last.metrics["fid"])
    state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
    assert all(k.split(".")[0] in {"generator", "discriminator", "generator_ema", "grid_z", "grid_labels"}
               for k in state["state_dict"])

    # `validate` on that checkpoint reproduces the number (seeded samples, EMA generator restored)
    fit.validate(model, datamodule=data, ckpt_path=checkpoint.best_model_path)
    assert float(fit.callback_metrics["val/fid"]) == pytest.approx(float(checkpoint.best_model_score))
    assert (tmp_path / "metrics" / f"validate-{Path(checkpoint.best_model_path).stem}.json").is_file()


def test_auto_extractor_is_the_classifier_for_labelled_data_and_inception_otherwise():
    auto = Evaluation()
    assert auto.extractor_for(SimpleNamespace(num_classes=10)) == "classifier"
    assert auto.extractor_for(SimpleNamespace(num_classes=1)) == "inception"  # e.g. CIFAR-10 horses only
    assert auto.extractor_for(SimpleNamespace(num_classes=0)) == "inception"
    assert Evaluation(extractor="inception").extractor_for(SimpleNamespace(num_classes=10)) == "inception"


def test_auto_reports_inception_fid_on_paper_datasets_when_its_weights_are_at_hand(tmp_path, monkeypatch):
    cifar, mnist = CIFAR10(data_dir=str(tmp_path), download=False), EmbeddedMNIST()
    assert Evaluation().extractor_for(cifar) == "classifier"  # no weights here: works offline
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"")
    monkeypatch.setattr(callback_module, "inception_weights", lambda path=None: str(weights))
    assert Evaluation().extractor_for(cifar) == "inception"  # comparable with papers
    assert Evaluation().extractor_for(mnist) == "classifier"  # no paper reports Inception FID on it
    assert Evaluation(extractor="classifier").extractor_for(cifar) == "classifier"


@pytest.mark.integration  # two processes: an end-to-end run
def test_under_ddp_every_rank_logs_rank_zeros_fid_and_files_are_written_once(tmp_path, cache_dir):
    """Rank 0 computes, every rank logs the same numbers (so ModelCheckpoint(monitor="val/fid")
    works on both), and the files are written once."""
    done = subprocess.run([sys.executable, str(DDP_SCRIPT), str(tmp_path / "run"), str(cache_dir)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    logged = {(int(r), int(e)): float(f) for r, e, f in re.findall(r"RANK (\d) EPOCH (\d) FID ([-0-9.e+]+)", done.stdout)}
    assert set(logged) == {(0, 0), (1, 0), (0, 1), (1, 1)}, done.stdout
    assert logged[0, 0] == logged[1, 0] and logged[0, 1] == logged[1, 1]
    assert float(re.search(r"BEST ([-0-9.e+]+)", done.stdout).group(1)) == min(logged[0, 0], logged[0, 1])
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "metrics").iterdir()) == ["epoch_000.json", "epoch_001.json"]
    assert sorted(p.name for p in (run / "neighbours").iterdir()) == ["epoch_000.png", "epoch_001.png"]


def test_defaults_are_the_user_facing_ones_and_settings_may_be_a_mapping():
    default = Evaluation()
    assert default.every_n_epochs == 5 and default.settings == Settings()
    assert (default.settings.num_fake, default.settings.num_real, default.settings.real_split) == (5000, 5000, "train")
    assert Evaluation(settings={"num_fake": 8, "seed": 1}).settings == Settings(num_fake=8, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every_n_epochs": -1}, r"every_n_epochs must be >= 0 \(0: only under validate/test\), got -1"),
        ({"extractor": "fid"}, r"extractor must be 'auto', 'classifier' or 'inception', got 'fid'"),
        ({"settings": {"num_fakes": 8}}, r"unknown evaluation settings \['num_fakes'\]; valid: num_fake"),
        ({"settings": {"num_fake": 2}}, r"evaluation needs num_fake >= 4"),
    ],
)
def test_bad_arguments_say_what_is_wrong(kwargs: dict, message: str):
    with pytest.raises(ValueError, match=message):
        Evaluation(**kwargs)


def test_the_cli_takes_the_callbacks_own_defaults_and_nested_settings(cli_env, tmp_path, monkeypatch):
    """`--evaluation.settings.<name>` reaches the callback's Settings; every other value is the
    callback's own default (the CLI sets none), and its every_n_epochs is the best checkpoint's."""
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))  # main() exports the run directory: restored afterwards
    cli = main(["--model", "DCGAN", "--data", "EmbeddedMNIST", "--trainer.default_root_dir", str(tmp_path / "run"),
                "--trainer.logger=false", "--evaluation.settings.num_fake=200", "--evaluation.settings.real_split=val"],
               run=False)
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, Evaluation))
    default = Evaluation()
    assert callback.settings == Settings(num_fake=200, real_split="val")
    assert (callback.every_n_epochs, callback.extractor, callback.classifier_epochs) == (
        default.every_n_epochs, default.extractor, default.classifier_epochs)
    best = next(c for c in cli.trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor == "val/fid")
    assert best.every_n_epochs == default.every_n_epochs
    assert isinstance(best, BestCheckpoint) and best.mode == "min"  # from the metric: the CLI sets no mode
