"""Mode counts of Stacked MNIST: the histogram metrics, the per-channel classifier, and the
`modes` / `mode_kl` of the Evaluation callback and of `evaluate()` itself (real stacks cover about
all 1,000; a copy of one image covers one)."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch

from lit_gan.data import StackedMNIST
from lit_gan.metrics import Settings
from lit_gan.metrics.classifier import load_or_train
from lit_gan.metrics.evaluate import evaluate, extract
from lit_gan.metrics.extractors import ClassifierExtractor
from lit_gan.metrics.modes import combine_channels, kl_to_uniform, mode_counts, modes_covered, stacked_classifier, summary
from tests.metrics.conftest import evaluation
from tests.metrics.fakes import RealDigits


@pytest.fixture(scope="module")
def stacks() -> StackedMNIST:
    data = StackedMNIST(epoch_size=26_000, val_size=1_000, mode_samples=2_000)
    data.setup("fit")
    return data


@pytest.fixture(scope="module")
def digit_cache(tmp_path_factory: pytest.TempPathFactory, stacks: StackedMNIST) -> Path:
    """A cache holding the source digits' classifier, trained once (the evaluation's default budget)."""
    root = tmp_path_factory.mktemp("modes_cache")
    torch.set_num_threads(1)
    load_or_train(stacks.source_data(), root)
    return root


def test_kl_to_uniform_is_zero_for_uniform_and_log_k_for_one_mode():
    assert kl_to_uniform(torch.full((1000,), 26)) == pytest.approx(0.0, abs=1e-12)
    one = torch.zeros(1000, dtype=torch.long)
    one[417] = 26_000
    assert kl_to_uniform(one) == pytest.approx(math.log(1000)) and modes_covered(one) == 1
    half = torch.tensor([3, 1, 0, 0])  # p = (3/4, 1/4, 0, 0) against 1/4 each
    assert kl_to_uniform(half) == pytest.approx(0.75 * math.log(3) + 0.25 * math.log(1)) and modes_covered(half) == 2
    assert summary(torch.tensor([5, 5, 7]), 10) == {"modes": 2, "mode_kl": pytest.approx(math.log(10) - (-(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)))}
    assert mode_counts(torch.tensor([0, 9, 9]), 10).tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]


def test_joint_logits_are_the_per_channel_digits_in_order():
    log_probs = torch.randn(6, 3, 10).log_softmax(2)
    joint = combine_channels(log_probs)
    digits = log_probs.argmax(2)
    assert joint.shape == (6, 1000)
    assert torch.equal(joint.argmax(1), digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2])
    assert torch.allclose(joint.exp().sum(1), torch.ones(6), atol=1e-5)  # a distribution over the 1,000 modes


def test_real_stacks_cover_about_all_1000_modes(stacks, digit_cache):
    """26,000 real stacks. Each channel's class is the digit classifier's class of that source
    digit, so the 4,500 digits are classified once and looked up (checked against classifying
    the stacks themselves on 500 of them)."""
    net, record = stacked_classifier(stacks, digit_cache)
    assert record["digit_test_accuracy"] > 0.9 and record["test_accuracy"] <= record["digit_test_accuracy"]
    assert record["test_accuracy"] > record["digit_test_accuracy"] ** 3 - 0.05  # three digits right at once
    train = stacks.train_set
    digit_logits = extract(ClassifierExtractor(net.digit), train.digits, 500)[1]
    modes = (digit_logits.argmax(1)[train.triples] * torch.tensor([100, 10, 1])).sum(1)
    direct = extract(ClassifierExtractor(net), train.images[:500], 500)[1].argmax(1)
    assert torch.equal(direct, modes[:500])
    assert (modes == train.labels).float().mean() > 0.8
    got = summary(modes, 1000)
    assert got["modes"] >= 990 and got["mode_kl"] < 0.1, got


def test_the_evaluation_counts_modes_of_stacked_data(tmp_path, stacks, digit_cache):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "classifiers").symlink_to(digit_cache / "classifiers")
    callback = evaluation(cache, num_real=2_000)
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, limit_val_batches=1, callbacks=[callback])
    one = stacks.val_set.images[:1]
    copies = RealDigits(one, stacks.val_set.labels[:1])  # a generator that copies one image
    trainer.validate(copies, datamodule=stacks)
    m, protocol = callback.last.metrics, callback.last.protocol
    assert m["modes"] == 1 and m["mode_kl"] == pytest.approx(math.log(1000)) == m["mode_kl_max"]
    assert float(trainer.callback_metrics["val/modes"]) == 1 and m["classes_covered"] == 1
    assert protocol["modes"]["num_fake"] == protocol["modes"]["num_real"] == 2_000  # the data's mode_samples
    assert protocol["modes"]["digit_accuracy"] > 0.9 and protocol["extractor"] == "classifier(width=32)"
    # 2,000 draws of 1,000 equally likely modes reach about 1000 (1 - e^-2) = 865 of them
    assert 800 < m["modes_real"] <= 1000 and m["mode_kl_real"] < 0.5

    real = callback.evaluate(RealDigits(stacks.train_set.images, stacks.train_set.labels), stacks).metrics
    assert abs(real["modes"] - real["modes_real"]) < 40 and real["mode_kl"] == pytest.approx(real["mode_kl_real"], abs=0.1)
    assert real["fid"] < 0.1 * m["fid"]


def test_evaluate_itself_counts_the_modes_of_stacked_data(tmp_path, stacks, digit_cache, monkeypatch):
    """`evaluate()` without the callback (scripts, bench/) gives the mode metrics too, over `mode_samples`."""
    monkeypatch.setattr(stacks, "mode_samples", 300)
    net, record = stacked_classifier(stacks, digit_cache)
    classifier = ClassifierExtractor(net)
    settings = Settings(num_fake=100, num_real=500, kid_subsets=2, cache_dir=str(tmp_path))
    copies = RealDigits(stacks.val_set.images[:1], stacks.val_set.labels[:1])
    report = evaluate(copies, stacks, classifier, settings, classifier, record)
    m = report.metrics
    assert m["modes"] == 1 and m["mode_kl"] == pytest.approx(math.log(1000)) == m["mode_kl_max"]
    assert 200 < m["modes_real"] < 300 and m["mode_seconds"] > 0  # 300 draws of 1,000 modes reach about 259
    assert m["eval_seconds"] >= m["mode_seconds"] and m["class_kl"] > 0
    assert report.protocol["modes"]["num_fake"] == report.protocol["modes"]["num_real"] == 300
    assert report.protocol["modes"]["digit_accuracy"] == record["digit_test_accuracy"]
    without = evaluate(copies, stacks, classifier, settings).metrics  # no classifier: nothing reads the modes
    assert "modes" not in without and "fid" in without
