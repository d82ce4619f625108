"""The dataset classifier: shapes, training under Lightning, automatic training and its cache, configs."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

import lit_gan.data
from lit_gan.callbacks import Evaluation
from lit_gan.data import EmbeddedMNIST
from lit_gan.metrics import Classifier, classifier as classifier_module
from lit_gan.metrics.classifier import load_or_train
from tests.metrics.conftest import CLASSIFIER_EPOCHS

REPO = Path(__file__).resolve().parents[2]


def test_classifier_gives_logits_and_penultimate_features():
    model = Classifier((3, 32, 32), 10, width=8)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    assert model(x).shape == (4, 10) and model.features(x).shape == (4, 32)
    with pytest.raises(ValueError, match="labelled data"):
        Classifier((1, 28, 28), 0)


def test_classifier_trains_under_lightning_with_data_in_0_1(tmp_path):
    L.seed_everything(0)
    data = EmbeddedMNIST(batch_size=64, value_range=(0.0, 1.0))
    model = Classifier(data.image_shape, data.num_classes, width=8)
    trainer = L.Trainer(default_root_dir=tmp_path, max_epochs=1, limit_val_batches=2,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=data)
    assert model.input_range == (0.0, 1.0)  # batches in [0, 1] are rescaled to the [-1, 1] it expects
    metrics = trainer.callback_metrics
    assert {"train/loss", "train/acc", "val/loss", "val/acc"} <= set(metrics)
    assert metrics["val/acc"] > 0.35  # one epoch (70 steps) of a width-8 net: far above chance (0.1)

    # its checkpoint serves the evaluation (--evaluation.classifier_path), checked against the data
    trainer.save_checkpoint(tmp_path / "classifier.ckpt")
    evaluation = Evaluation(classifier_path=str(tmp_path / "classifier.ckpt"), settings={"cache_dir": str(tmp_path / "cache")})
    features, classifier, record = evaluation.networks(model, data)
    assert features is classifier and features.net.hparams.width == 8
    assert record["test_accuracy"] == pytest.approx(float(metrics["val/acc"]), abs=0.15)  # val = test here
    with pytest.raises(ValueError, match=r"trained on images \(1, 28, 28\).*has \(1, 32, 32\)"):
        Evaluation(classifier_path=str(tmp_path / "classifier.ckpt")).networks(model, EmbeddedMNIST(image_size=32))


def test_automatic_training_is_cached_by_dataset(trained_cache, mnist, monkeypatch):
    root, record = trained_cache
    assert record["test_accuracy"] > 0.9 and record["epochs"] == CLASSIFIER_EPOCHS
    assert Path(record["path"]).is_file() and Path(record["path"]).parent == root / "classifiers"
    monkeypatch.setattr(classifier_module, "train", lambda *a, **k: pytest.fail("trained again instead of loading"))
    model, again = load_or_train(mnist, root, epochs=CLASSIFIER_EPOCHS)
    assert again["test_accuracy"] == record["test_accuracy"] and not model.training
    # another split of the same dataset is another dataset: not the cached classifier
    other = EmbeddedMNIST(seed=1)
    other.setup()
    with pytest.raises(pytest.fail.Exception, match="trained again"):
        load_or_train(other, root, epochs=CLASSIFIER_EPOCHS)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "cifar10"])
def test_classifier_configs_name_the_classifier_and_the_dataset(dataset):
    spec = yaml.safe_load((REPO / "configs" / dataset / "classifier.yaml").read_text())
    assert spec["model"]["class_path"] == "lit_gan.metrics.Classifier"
    data_class = getattr(lit_gan.data, spec["data"]["class_path"].rsplit(".", 1)[-1])
    data = data_class(**{**spec["data"].get("init_args", {}), "download": False})
    model = Classifier(data.image_shape, data.num_classes, **spec["model"].get("init_args", {}))
    assert model(torch.zeros(2, *data.image_shape)).shape == (2, 10)
    assert spec["checkpoint"] == {"monitor": "val/acc", "mode": "max"}
    assert spec["trainer"]["max_epochs"] >= 1


def test_the_same_cache_key_always_gives_the_same_classifier(mnist, tmp_path, monkeypatch):
    monkeypatch.setattr(classifier_module, "train", lambda model, *a, **k: model)  # the initial weights decide
    monkeypatch.setattr(classifier_module, "accuracy", lambda *a, **k: 0.0)
    weights = []
    for global_seed in (1, 2):  # whatever the global RNG holds, e.g. after some training
        torch.manual_seed(global_seed)
        model, _ = load_or_train(mnist, tmp_path / f"cache{global_seed}", epochs=1)
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_training_is_deterministic_for_its_cache_key_and_shows_progress(mnist, tmp_path, capsys, caplog):
    weights = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        model, record = load_or_train(mnist, tmp_path / f"cache{global_seed}", steps=12, batch_size=32)
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # trained alike, not only initialised
    assert (record["steps"], record["batch_size"], record["epochs"]) == (12, 32, round(12 * 32 / 4500, 2))
    assert "classifier" in capsys.readouterr().err  # the progress bar, on stderr
    said = [r.getMessage() for r in caplog.records if "classifier for the evaluation's features" in r.getMessage()]
    assert len(said) == 2 and "12 steps of 32 images" in said[0] and str(tmp_path / "cache1") in said[0]


def test_bad_classifier_budgets_are_refused(mnist, tmp_path):
    with pytest.raises(ValueError, match="classifier steps must be a positive integer"):
        load_or_train(mnist, tmp_path, steps=0)
    with pytest.raises(ValueError, match="classifier epochs must be a positive integer"):
        load_or_train(mnist, tmp_path, epochs=0)


def test_the_automatic_classifier_takes_a_fixed_budget(mnist, tmp_path, monkeypatch):
    """The default training: STEPS steps of 128 images whatever the dataset's size. (Counted with a
    stand-in loss: the real training's accuracy is the shipped classifier's, next test.)"""
    steps = []

    def counted(self: Classifier, batch: tuple) -> tuple:
        steps.append(len(batch[0]))
        loss = next(self.parameters()).sum() * 0  # a step of the optimizer, not of the network
        return loss, loss

    monkeypatch.setattr(Classifier, "loss_and_accuracy", counted)
    _, record = load_or_train(mnist, tmp_path, progress=False, use_shipped=False)
    assert steps == [128] * classifier_module.STEPS and record["steps"] == classifier_module.STEPS


def test_the_shipped_classifier_is_the_default_one_checked_by_hash(mnist, tmp_path, monkeypatch):
    """EmbeddedMNIST's default classifier ships with lit_gan (made by `bench/classifier.py --ship`,
    the same training under the same cache key): loaded, never trained, with >= 0.965 test accuracy
    (recomputed here); a file whose SHA-256 differs from SHA256SUMS is not used."""
    monkeypatch.setattr(classifier_module, "train", lambda *a, **k: pytest.fail("trained instead of loading the shipped one"))
    model, record = load_or_train(mnist, tmp_path, progress=False)
    assert Path(record["path"]).parent == classifier_module.SHIPPED and record["steps"] == classifier_module.STEPS
    images, labels = classifier_module.cache.split_tensors(mnist, "test")
    assert classifier_module.accuracy(model, images, labels) == pytest.approx(record["test_accuracy"])
    assert record["test_accuracy"] >= 0.965, record

    tampered = tmp_path / "shipped"
    shutil.copytree(classifier_module.SHIPPED, tampered)
    entry = tampered / Path(record["path"]).name
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed
    entry.write_bytes(bytes(data))
    monkeypatch.setattr(classifier_module, "SHIPPED", tampered)
    trained = []
    monkeypatch.setattr(classifier_module, "train", lambda *a, **k: trained.append(1))
    with pytest.warns(UserWarning, match="does not match its SHA-256"):
        load_or_train(mnist, tmp_path / "other_cache", progress=False)
    assert trained == [1]
