"""The metrics registry: a metric added from outside (one class, one registry line) is computed by
`evaluate()`, logged by the Evaluation callback and chosen by in its direction by `BestCheckpoint`;
what a metric may ask for and return; data never imports metrics."""

from __future__ import annotations

import ast
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import Tensor

from lit_gan.callbacks import BestCheckpoint
from lit_gan.metrics import METRICS, Metric, evaluate
from lit_gan.metrics.registry import directions, higher_is_better
from tests.metrics.conftest import evaluation
from tests.metrics.fakes import RealDigits

REPO = Path(__file__).resolve().parents[2]


class FidPerPrecision(Metric):
    """A rule of our own for the best checkpoint, from the values computed before it: FID per unit of precision."""

    higher_is_better = {"fid_per_precision": False}

    def compute(self, values: dict[str, float]) -> dict[str, float]:
        return {"fid_per_precision": values["fid"] / max(values["precision"], 1e-6)}


class Brightness(Metric):
    """A metric of the samples themselves: their mean pixel value."""

    higher_is_better = {"brightness": True}

    def compute(self, images: Tensor) -> dict[str, float]:
        return {"brightness": float(images.float().mean())}


def test_a_metric_added_from_outside_is_evaluated_logged_and_monitored_in_its_direction(tmp_path, mnist, cache_dir,
                                                                                         monkeypatch):
    with pytest.raises(ValueError, match="val/fid_per_precision is not an evaluation metric"):
        BestCheckpoint(monitor="val/fid_per_precision")  # not registered yet
    monkeypatch.setitem(METRICS, "fid_per_precision", FidPerPrecision())  # one line each, as a user's code would
    monkeypatch.setitem(METRICS, "brightness", Brightness())

    callback = evaluation(cache_dir, num_fake=100, num_real=500)
    model = RealDigits(mnist.val_set.images, mnist.val_set.labels)
    features, classifier, record = callback.networks(model, mnist)
    m = evaluate(model, mnist, features, callback.settings, classifier, record).metrics  # no Trainer
    assert m["fid_per_precision"] == pytest.approx(m["fid"] / m["precision"]) and m["fid_per_precision"] > 0
    assert m["brightness"] == pytest.approx(float((mnist.val_set.images.float()).mean()), rel=0.1)

    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, limit_val_batches=1, callbacks=[callback])
    trainer.validate(model, datamodule=mnist)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert logged["val/fid_per_precision"] == pytest.approx(m["fid_per_precision"])
    assert logged["val/brightness"] == pytest.approx(m["brightness"])
    assert set(logged) == {f"val/{k}" for k in m}  # evaluate() and the callback: the same set

    assert BestCheckpoint(monitor="val/fid_per_precision").mode == "min"
    assert BestCheckpoint(monitor="val/brightness").mode == "max"


def test_every_value_has_a_declared_direction_and_the_registry_names_them_once():
    better = directions()
    assert (better["fid"], better["kid_mean"], better["is_mean"], better["precision"]) == (False, False, True, True)
    assert (better["modes"], better["mode_kl"], better["eval_seconds"], better["is_real_mean"]) == (True, False, None, None)
    names = [name for metric in METRICS.values() for name in metric.names]
    assert len(names) == len(set(names))  # no value produced by two metrics
    assert higher_is_better("test/fid_class/7") is False and higher_is_better("val/label_accuracy_class/0") is True
    with pytest.raises(KeyError):
        higher_is_better("fid")  # logged names carry their stage


@pytest.mark.parametrize("metric", [
    type("Typo", (Metric,), {"higher_is_better": {"x": True}, "compute": lambda self, featurs: {"x": 0.0}}),
    type("Undeclared", (Metric,), {"higher_is_better": {"x": True}, "compute": lambda self, features: {"y": 0.0}}),
])
def test_a_metric_asking_for_no_input_or_returning_an_undeclared_value_is_told(metric, mnist, cache_dir, monkeypatch):
    monkeypatch.setitem(METRICS, "bad", metric())
    callback = evaluation(cache_dir, num_fake=20, num_real=100, kid_subsets=1)
    model = RealDigits(mnist.val_set.images, mnist.val_set.labels)
    message = r"asks for \['featurs'\], which no evaluation has; name inputs of" if metric.__name__ == "Typo" else (
        r"Undeclared returned \['y'\], which its higher_is_better does not name")
    with pytest.raises((TypeError, ValueError), match=message):
        callback.evaluate(model, mnist)


class LoggedScores(L.LightningModule):
    """Logs ``scores[epoch]`` as ``name`` at each validation: what the best checkpoint sees."""

    def __init__(self, name: str, scores: list[float]) -> None:
        super().__init__()
        self.name, self.scores = name, scores
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        return (self.weight * batch).sum()

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self.log(self.name, self.scores[self.current_epoch])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.parametrize(("monitor", "best"), [("val/is_mean", 3.0), ("val/precision", 3.0), ("val/fid", 1.0),
                                               ("val/kid_mean", 1.0)])
def test_the_best_checkpoint_keeps_the_max_or_the_min_as_the_metric_says(tmp_path, monitor, best):
    checkpoint = BestCheckpoint(monitor=monitor, dirpath=tmp_path, filename="epoch{epoch}", auto_insert_metric_name=False)
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=3, limit_train_batches=1,
                        limit_val_batches=1, num_sanity_val_steps=0, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[checkpoint])
    data = torch.utils.data.DataLoader(torch.ones(2, 1), batch_size=1)
    trainer.fit(LoggedScores(monitor, [2.0, 3.0, 1.0] if best == 3.0 else [2.0, 1.0, 3.0]), data, data)
    assert float(checkpoint.best_model_score) == best
    assert Path(checkpoint.best_model_path).name == "epoch1.ckpt"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"monitor": "val/fdi"}, r"^--checkpoint.monitor val/fdi is not an evaluation metric; known: val/fid, val/kid_mean, "
                             r"val/is_mean, .*val/modes, val/mode_kl \(add one: a Metric in lit_gan.metrics.METRICS"),
    ({"monitor": "val/eval_seconds"}, r"val/eval_seconds is a reference, a spread or a time, not a quality"),
    ({"monitor": "val/is_mean", "mode": "min"}, r"--checkpoint.mode min contradicts val/is_mean, whose best is its maximum"),
])
def test_a_monitor_without_a_direction_stops_before_training_in_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        BestCheckpoint(**kwargs)
    assert "\n" not in str(error.value)


def test_values_outside_the_registry_take_the_mode_given():
    assert BestCheckpoint(monitor="val/acc", mode="max").mode == "max"  # configs/<data>/classifier.yaml
    assert BestCheckpoint(monitor="val/fid", mode="min").mode == "min"  # a run's config.yaml saved before: agrees
    assert BestCheckpoint().monitor == "val/fid" and BestCheckpoint().mode == "min"


def test_no_module_of_the_data_package_imports_the_metrics():
    offenders = []
    for path in sorted((REPO / "lit_gan" / "data").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if f"{n}.".startswith("lit_gan.metrics.")]
    assert offenders == []
