"""Evaluating stand-in generators made of real EmbeddedMNIST digits (tests/metrics/fakes.py),
whose right answers are known: mode coverage, label accuracy, cached real statistics."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from lit_gan.callbacks import Evaluation
from lit_gan.metrics import ClassifierExtractor, Settings
from tests.metrics.conftest import CLASSIFIER_EPOCHS
from tests.metrics.fakes import RealDigits

N = 500


def evaluation(cache_dir: Path, **kwargs) -> Evaluation:
    """The callback with small sample counts; `kwargs` go to Evaluation or, if they are Settings', there."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    settings = {"num_fake": N, "num_real": None, "cache_dir": str(cache_dir), "kid_subsets": 20,
                **{k: v for k, v in kwargs.items() if k in fields}}
    rest = {k: v for k, v in kwargs.items() if k not in fields}
    return Evaluation(**{"classifier_epochs": CLASSIFIER_EPOCHS, **rest}, settings=Settings(**settings))


def same(metrics: dict) -> dict:
    """The metrics without the timing."""
    return {k: v for k, v in metrics.items() if k != "eval_seconds"}


def test_a_collapsed_generator_covers_one_class(mnist, cache_dir):
    model = RealDigits(mnist.train_set.images, mnist.train_set.labels, only=3)
    rng = torch.get_rng_state()
    report = evaluation(cache_dir).evaluate(model, mnist)
    assert torch.equal(rng, torch.get_rng_state())  # seeded sampling leaves the training RNG alone
    assert report.metrics["classes_covered"] == 1
    assert report.class_fractions[3] > 0.8
    assert report.metrics["class_kl"] == pytest.approx(math.log(10), abs=0.4)
    assert report.metrics["recall"] < 0.3


def test_a_conditional_model_that_ignores_its_label_is_at_chance(mnist, cache_dir):
    model = RealDigits(mnist.val_set.images, mnist.val_set.labels, conditional=True, ignore_labels=True)
    report = evaluation(cache_dir).evaluate(model, mnist)
    assert 0.05 < report.metrics["label_accuracy"] < 0.16  # 1 / 10 classes
    assert report.metrics["classes_covered"] == 10  # the images themselves are fine


def test_real_statistics_are_cached_on_disk(mnist, cache_dir, monkeypatch):
    seen: list[int] = []
    extract = ClassifierExtractor.extract
    monkeypatch.setattr(ClassifierExtractor, "extract", lambda self, x: seen.append(len(x)) or extract(self, x))
    model = RealDigits(mnist.val_set.images, mnist.val_set.labels)
    first = evaluation(cache_dir, num_fake=300, num_real=2000).evaluate(model, mnist)
    assert sum(seen) == 2000 + 300 and len(list((cache_dir / "reference").iterdir())) == 1
    seen.clear()
    second = evaluation(cache_dir, num_fake=300, num_real=2000).evaluate(model, mnist)  # a new callback
    assert sum(seen) == 300  # generated images only: the real ones came from the cache
    assert second.metrics["fid"] == first.metrics["fid"]
    seen.clear()
    evaluation(cache_dir, num_fake=300, num_real=1000).evaluate(model, mnist)  # another protocol: recomputed
    assert sum(seen) == 1000 + 300


