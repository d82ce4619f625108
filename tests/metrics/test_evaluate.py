"""Evaluating stand-in generators made of real EmbeddedMNIST digits (tests/metrics/fakes.py),
whose right answers are known: mode coverage, label accuracy, cached real statistics; and the
checks of the evaluation `Settings`."""

from __future__ import annotations

import math

import pytest
import torch

from lit_gan.metrics import Classifier, ClassifierExtractor, Settings
from lit_gan.metrics.evaluate import evaluate
from tests.metrics.conftest import evaluation, same
from tests.metrics.fakes import RealDigits, UnitRange


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


def test_samples_are_read_in_the_models_value_range(mnist, cache_dir):
    """A [0, 1] generator on (-1, 1) data scores like the same digits drawn in [-1, 1]."""
    assert mnist.value_range == (-1.0, 1.0)
    callback, digits = evaluation(cache_dir, num_fake=100, num_real=500), (mnist.val_set.images, mnist.val_set.labels)
    unit = callback.evaluate(UnitRange(*digits), mnist)
    assert same(unit.metrics) == same(callback.evaluate(RealDigits(*digits), mnist).metrics)
    misread = UnitRange(*digits)
    misread.value_range = (-1.0, 1.0)  # the same images, read in the data's range: grey digits
    assert callback.evaluate(misread, mnist).metrics["fid"] > 10 * unit.metrics["fid"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"num_fake": 3}, r"num_fake >= 4 and num_real >= 6 .*got 3, 5000; raise --evaluation.settings.num_fake"),
        ({"num_real": 5}, r"num_real >= 6 \(or None: the whole split\); got 5000, 5"),
        ({"num_fake": "100"}, r"got '100', 5000"),
        ({"real_split": "valid"}, r"real_split must be 'train', 'val' or 'test', got 'valid'"),
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0; set --evaluation.settings.batch_size \(default 250\)"),
        ({"kid_subset_size": 1}, r"kid_subset_size must be an integer >= 2"),
        ({"is_splits": True}, r"is_splits must be an integer >= 1, got True"),
        ({"cover_ratio": 0.0}, r"cover_ratio must be a number > 0, got 0.0"),
        ({"num_real": 8, "dc_neighbourhood": 8}, r"need more images than their size; got num_fake 5000, num_real 8"),
    ],
)
def test_settings_refuse_bad_values_saying_which_and_how_to_fix(values: dict, message: str):
    with pytest.raises(ValueError, match=message):
        Settings(**values)


def test_settings_parse_a_mapping_and_name_unknown_keys():
    assert Settings.parse({"num_fake": 8, "num_real": None}) == Settings(num_fake=8, num_real=None)
    given = Settings(seed=3)
    assert Settings.parse(given) is given
    with pytest.raises(ValueError, match=r"unknown evaluation settings \['num_fakes'\]; valid: num_fake, num_real"):
        Settings.parse({"num_fakes": 8})
    with pytest.raises(TypeError, match="must be a Settings or a mapping of its fields, got int"):
        Settings.parse(5)


def test_the_classifiers_fid_is_given_beside_another_extractors(mnist, cache_dir):
    """With another feature extractor (Inception on CIFAR-10), FID in the dataset classifier's
    features is reported too, as `fid_classifier`: the same number the classifier alone gives."""
    model = RealDigits(mnist.train_set.images, mnist.train_set.labels, only=3)
    callback = evaluation(cache_dir)
    features, classifier, record = callback.networks(model, mnist)
    alone = callback.evaluate(model, mnist).metrics
    other = ClassifierExtractor(Classifier(tuple(mnist.image_shape), 10, width=8).eval())  # stands in for Inception
    beside = evaluate(model, mnist, other, callback.settings, classifier, record).metrics
    assert "fid_classifier" not in alone
    assert beside["fid_classifier"] == pytest.approx(alone["fid"], rel=1e-5)
    assert beside["fid"] != pytest.approx(alone["fid"], rel=1e-3)  # the other extractor's own FID
    assert beside["classes_covered"] == alone["classes_covered"] == 1  # classes still from the classifier
