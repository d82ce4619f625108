"""Mode counts for data with many discrete modes (Stacked MNIST's 1,000): how many modes the
samples reach (``modes``) and the KL divergence of their mode histogram to the uniform one
(``mode_kl``), as Metz et al. 2017 and Lin et al. 2018 (PacGAN) report them over 26,000 samples
(the metric itself is ``Modes`` in :mod:`lit_gan.metrics.registry`).

A sample's mode is read by a digit classifier applied to each channel
(:class:`StackedClassifier`, built from the data's ``source_data()``: the metrics side knows the
data, never the other way round); a mode counts as reached when at least one sample falls in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities.parsing import AttributeDict
from torch import Tensor, nn

from lit_gan.metrics import cache
from lit_gan.metrics.classifier import Classifier, accuracy, load_or_train
from lit_gan.metrics.extractors import FeatureExtractor, extract
from lit_gan.metrics.settings import Settings

MODES_VERSION = 1
"""Bump when the cached real reference of the mode metrics changes."""


class StackedClassifier(nn.Module):
    """A single-channel digit classifier applied to every channel of stacked images.

    ``features`` are the per-channel penultimate features side by side (C x F); ``head`` gives
    the K^C mode logits as sums of per-channel log-probabilities (the first channel is the most
    significant digit), so ``argmax`` is the per-channel argmax and the softmax is the product
    of the channels' class probabilities.
    """

    def __init__(self, digit: Classifier, channels: int = 3) -> None:
        super().__init__()
        self.digit, self.channels = digit.eval(), channels
        self.hparams = AttributeDict(width=digit.hparams.width, channels=channels,
                                     num_classes=digit.hparams.num_classes ** channels)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def features(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        return self.digit.features(x.reshape(n * c, 1, h, w)).reshape(n, -1)

    def head(self, features: Tensor) -> Tensor:
        per_channel = self.digit.head(features.reshape(len(features) * self.channels, -1))
        return combine_channels(per_channel.log_softmax(1).reshape(len(features), self.channels, -1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def combine_channels(log_probs: Tensor) -> Tensor:
    """(N, C, K) per-channel log-probabilities -> (N, K^C) joint ones, channel 0 most significant."""
    out = log_probs[:, 0]
    for c in range(1, log_probs.shape[1]):
        out = (out[:, :, None] + log_probs[:, c, None, :]).flatten(1)
    return out


def has_modes(datamodule: Any) -> bool:
    """Whether the data has many discrete modes to count (a ``mode_samples`` attribute: StackedMNIST)."""
    return bool(getattr(datamodule, "mode_samples", 0))


def is_stacked(datamodule: Any) -> bool:
    """Whether the data's channels are images of a single-channel ``source_data()`` (StackedMNIST):
    its classifier is the source's, applied per channel (:func:`stacked_classifier`)."""
    return callable(getattr(datamodule, "source_data", None))


def stacked_classifier(datamodule: Any, cache_root: str | Path | None = None,
                       device: torch.device | str = "cpu") -> tuple[StackedClassifier, dict[str, Any]]:
    """The digit classifier of ``datamodule.source_data()`` (:func:`load_or_train`, default
    budget, cached) wrapped for stacks, and its record: ``test_accuracy`` is the share of test
    stacks whose three digits are all right, ``digit_test_accuracy`` the digit classifier's own."""
    digit, record = load_or_train(datamodule.source_data(), cache_root, device=device)
    net = StackedClassifier(digit, datamodule.image_shape[0]).eval()
    test = cache.split_tensors(datamodule, "test")
    return net, {**record, "digit_test_accuracy": record["test_accuracy"], "test_accuracy": accuracy(net, *test)}  # type: ignore[arg-type]


# ----- the metrics --------------------------------------------------------------------------
def mode_counts(modes: Tensor, num_modes: int) -> Tensor:
    """How many samples fall in each mode (int64, length ``num_modes``)."""
    return torch.bincount(modes.long().cpu(), minlength=num_modes)


def modes_covered(counts: Tensor) -> int:
    """Modes with at least one sample."""
    return int((counts > 0).sum())


def kl_to_uniform(counts: Tensor) -> float:
    """KL(p || uniform) of the histogram ``counts`` (nats): log K - H(p); 0 for a uniform
    histogram, log K when every sample is in one mode."""
    p = counts.double() / counts.sum().clamp_min(1)
    p = p[p > 0]
    return float((p * (p * len(counts)).log()).sum())


def summary(modes: Tensor, num_modes: int) -> dict[str, float]:
    counts = mode_counts(modes, num_modes)
    return {"modes": modes_covered(counts), "mode_kl": kl_to_uniform(counts)}


def real_modes(datamodule: Any, classifier: FeatureExtractor, settings: Settings, n: int) -> dict[str, Any]:
    """``summary`` of ``n`` real training images (a seeded subset; all when the split is
    smaller), cached on disk by dataset, classifier, n and seed."""
    spec = cache.dataset_spec(datamodule)
    key = cache.digest(MODES_VERSION, spec, classifier.key, n, settings.seed)
    path = cache.cache_dir(settings.cache_dir) / "reference" / f"{spec['class']}-modes-{key}.pt"
    stored = cache.load(path)
    if stored is not None:
        return stored
    size = len(cache.split_dataset(datamodule, "train"))  # type: ignore[arg-type]
    order = torch.randperm(size, generator=torch.Generator().manual_seed(settings.seed))[:n].sort().values
    images, _ = cache.split_tensors(datamodule, "train", order)
    modes = extract(classifier, images, settings.batch_size)[1].argmax(1)
    reference = {**summary(modes, datamodule.num_classes), "num_real": len(order)}
    cache.save(reference, path)
    return reference
