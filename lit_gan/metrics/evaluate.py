"""Evaluate a generator against a data module: real reference (cached), samples, and every
metric of the registry (:data:`lit_gan.metrics.registry.METRICS`) whose inputs are there.

:func:`evaluate` is what the :class:`~lit_gan.callbacks.Evaluation` callback runs; it works
without a Trainer too (scripts, benchmarks) and returns the same metrics.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from lit_gan.errors import Diverged
from lit_gan.images import to_uint8
from lit_gan.metrics import cache, scores
from lit_gan.metrics.extractors import FeatureExtractor, InceptionExtractor, extract
from lit_gan.metrics.modes import has_modes, real_modes
from lit_gan.metrics.registry import METRICS, Metric, declared
from lit_gan.metrics.settings import Settings
from lit_gan.progress import bar

REFERENCE_VERSION = 1
"""Bump when the content of cached real references changes."""


@dataclass
class Report:
    """Scalar ``metrics``, the ``protocol`` they were computed under, and the neighbour images
    (uint8, ``neighbour_rows`` rows of one generated sample + its ``neighbour_k`` nearest real)."""

    metrics: dict[str, float]
    protocol: dict[str, Any]
    class_fractions: list[float] | None = None
    neighbours: Tensor | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "protocol": self.protocol, "class_fractions": self.class_fractions}


def real_reference(datamodule: Any, extractor: FeatureExtractor, settings: Settings,
                   progress: bool = False) -> dict[str, Any]:
    """Features and statistics of the real images, cached on disk by dataset (+ content
    fingerprint), split, extractor, image size, number of images and seed."""
    split, spec = settings.real_split, cache.dataset_spec(datamodule)
    key = cache.digest(REFERENCE_VERSION, spec, cache.fingerprint(datamodule, split), split, extractor.key,
                       settings.num_real, settings.seed, settings.dc_neighbourhood, settings.is_splits)
    path = cache.cache_dir(settings.cache_dir) / "reference" / f"{spec['class']}-{split}-{extractor.key}-{key}.pt"
    stored = cache.load(path)
    if stored is not None:
        return stored
    n = len(cache.split_dataset(datamodule, split))  # type: ignore[arg-type]
    indices = torch.arange(n)
    if settings.num_real is not None and settings.num_real < n:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(settings.seed))
        indices = order[: settings.num_real].sort().values
    images, labels = cache.split_tensors(datamodule, split, indices)
    features, logits = extract(extractor, images, settings.batch_size, f"real {split} statistics" if progress else "")
    classes = range(datamodule.num_classes if datamodule.num_classes >= 2 else 0)
    reference = {
        "indices": indices, "features": features, "logits": logits, "labels": labels.long(),
        "stats": scores.fid_statistics(features),
        "class_stats": {c: scores.fid_statistics(features[labels == c]) for c in classes if int((labels == c).sum()) >= 2},
        "inception_score": scores.inception_score(logits, settings.is_splits, settings.seed),
        "radii": scores.nearest(features, features, settings.dc_neighbourhood, exclude_self=True)[0][:, -1],
        "nn_distance": float(scores.nearest(features, features, 1, exclude_self=True)[0].mean()),
    }
    cache.save(reference, path)
    return reference


@torch.no_grad()
def generate(model: Any, n: int, labels: Tensor | None, settings: Settings, value_range: tuple[float, float],
             progress: bool = False) -> Tensor:
    """``n`` uint8 samples from ``model.generate`` in eval mode (the EMA generator if any), fp32,
    with seeded noise; the global RNG state is left untouched."""
    device = model.device
    was_training = model.training
    model.eval()
    devices = [device] if device.type == "cuda" else []
    out = []
    try:
        with torch.random.fork_rng(devices=devices), torch.autocast(device.type, enabled=False):
            torch.manual_seed(settings.seed)
            for start in bar(range(0, n, settings.batch_size), desc="generating", unit="batch", enabled=progress):
                size = min(settings.batch_size, n - start)
                if labels is None:
                    images = model.generate(n=size)
                else:
                    images = model.generate(labels=labels[start : start + size].to(device))
                if not torch.isfinite(images).all():
                    raise Diverged("the generator produced non-finite images (a diverged model): FID and the other "
                                   "metrics would be meaningless, so none are computed")
                out.append(to_uint8(images.float(), value_range))
    finally:
        model.train(was_training)
    return torch.cat(out)


class Inputs:
    """What metrics read (a :class:`~lit_gan.metrics.registry.Metric` names them as the parameters
    of its ``compute``), each computed once, on first use:

    - always: ``settings``; ``real``: the extractor's real reference (:func:`real_reference`);
      ``images``: the uint8 samples; ``features``, ``logits``: the extractor's of the samples;
      ``nearest``: distances and indices (N, ``neighbour_k``) of each sample's nearest real images;
      ``values``: the metrics computed before (read-only); ``start``: when the evaluation began;
    - with a classifier, on labelled data: ``predicted`` (its class of each sample),
      ``data_fractions`` (the real class histogram) and, for conditional models, ``labels`` (the
      labels asked for); with a classifier other than the extractor: ``class_features`` and
      ``class_real`` (its reference); with a classifier record: ``record``;
    - with a classifier, on data with many discrete modes (``mode_samples``): ``modes``, the
      classifier's mode of ``mode_samples`` samples (``predicted``), ``num_modes``, the real
      reference of as many images (``real``) and ``start``.
    """

    NAMES = ("settings", "real", "images", "features", "logits", "nearest", "values", "start", "predicted",
             "data_fractions", "labels", "class_features", "class_real", "record", "modes")

    def __init__(self, model: Any, datamodule: Any, extractor: FeatureExtractor, settings: Settings,
                 classifier: FeatureExtractor | None = None, record: dict[str, Any] | None = None,
                 progress: bool = False) -> None:
        self.start = time.perf_counter()
        self.model, self.datamodule, self.extractor, self.settings = model, datamodule, extractor, settings
        self.classifier, self.record, self.progress = classifier, record, progress
        self.real = real_reference(datamodule, extractor, settings, progress)
        num_classes = datamodule.num_classes if datamodule.num_classes >= 2 else 0
        self.data_fractions = scores.class_fractions(self.real["labels"], num_classes) if num_classes else None
        self.labels = None  # the labels a conditional model is asked for, drawn in the data's proportions
        if bool(getattr(model, "conditional", False)) and self.data_fractions is not None:
            drawn = torch.Generator().manual_seed(settings.seed)
            self.labels = torch.multinomial(self.data_fractions.float(), settings.num_fake, replacement=True, generator=drawn)
        self.images = generate(model, settings.num_fake, self.labels, settings, tuple(model.value_range), progress)
        self.features, self.logits = extract(extractor, self.images, settings.batch_size,
                                             "sample features" if progress else "")
        self.values: Mapping[str, float] = MappingProxyType({})

    def available(self) -> set[str]:
        """The names of the inputs this evaluation has."""
        classes = self.classifier is not None and self.data_fractions is not None
        other = self.classifier is not None and self.classifier is not self.extractor
        missing = {"predicted": not classes, "data_fractions": not classes, "labels": not classes or self.labels is None,
                   "class_features": not other, "class_real": not other,
                   "record": self.classifier is None or (self.record or {}).get("test_accuracy") is None,
                   "modes": self.classifier is None or not has_modes(self.datamodule)}
        return {name for name in self.NAMES if not missing.get(name)}

    @cached_property
    def nearest(self) -> tuple[Tensor, Tensor]:
        return scores.nearest(self.features, self.real["features"], self.settings.neighbour_k)

    @cached_property
    def class_outputs(self) -> tuple[Tensor, Tensor]:
        """The classifier's features and logits of the samples (the extractor's when it is the classifier)."""
        if self.classifier is None or self.classifier is self.extractor:
            return self.features, self.logits
        return extract(self.classifier, self.images, self.settings.batch_size)

    @property
    def predicted(self) -> Tensor:
        return self.class_outputs[1].argmax(1)

    @property
    def class_features(self) -> Tensor:
        return self.class_outputs[0]

    @cached_property
    def class_real(self) -> dict[str, Any]:
        assert self.classifier is not None
        return real_reference(self.datamodule, self.classifier, self.settings, self.progress)

    @cached_property
    def modes(self) -> dict[str, Any]:
        start, n, k = time.perf_counter(), self.datamodule.mode_samples, self.datamodule.num_classes
        assert self.classifier is not None
        labels = None
        if getattr(self.model, "conditional", False):  # uniformly drawn modes
            labels = torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(self.settings.seed))
        images = generate(self.model, n, labels, self.settings, tuple(self.model.value_range))
        predicted = extract(self.classifier, images, self.settings.batch_size)[1].argmax(1)
        real = real_modes(self.datamodule, self.classifier, self.settings, n)
        return {"predicted": predicted, "num_modes": k, "real": real, "start": start}


def evaluate(model: Any, datamodule: Any, extractor: FeatureExtractor, settings: Settings,
             classifier: FeatureExtractor | None = None, classifier_record: dict[str, Any] | None = None,
             progress: bool = False) -> Report:
    """Every registered metric (:data:`~lit_gan.metrics.registry.METRICS`) whose inputs there are
    (:class:`Inputs`), of ``model``'s samples against ``datamodule``'s real images.

    ``extractor`` gives the features (FID, KID, IS, precision/recall, density/coverage, nearest
    neighbours); ``classifier`` (a dataset classifier, possibly the extractor itself) gives class
    predictions: mode coverage, label accuracy and per-class FID for conditional models
    (``model.conditional``), ``fid_classifier`` when it is not the extractor, and the modes of data
    with many (``mode_samples``). ``classifier_record["test_accuracy"]`` goes into the protocol.
    ``progress``: progress bars for the real statistics, the samples and their features.
    """
    inputs = Inputs(model, datamodule, extractor, settings, classifier, classifier_record, progress)
    has, values = inputs.available(), {}
    for metric in sorted(METRICS.values(), key=lambda metric: "start" in metric.needs):  # the timing last
        unknown = [need for need in metric.needs if need not in Inputs.NAMES]
        if unknown:
            raise TypeError(f"{type(metric).__name__}.compute asks for {unknown}, which no evaluation has; name "
                            f"inputs of lit_gan.metrics.evaluate.Inputs: {', '.join(Inputs.NAMES)}")
        if set(metric.needs) <= has:
            inputs.values = MappingProxyType(dict(values))
            values.update(_checked(metric, metric.compute(**{need: getattr(inputs, need) for need in metric.needs})))
    protocol = _protocol(datamodule, extractor, settings, len(inputs.real["features"]), classifier, classifier_record)
    if "modes" in vars(inputs):  # the mode samples were drawn
        modes = inputs.modes
        protocol["modes"] = {"num_fake": datamodule.mode_samples, "num_real": int(modes["real"]["num_real"]),
                             "num_modes": modes["num_modes"], "classifier": classifier.name,  # type: ignore[union-attr]
                             "covered": "at least one sample", "kl": "KL(generated || uniform), nats",
                             "digit_accuracy": (classifier_record or {}).get("digit_test_accuracy")}
    fractions = None
    if "predicted" in has:
        fractions = scores.class_fractions(inputs.predicted, len(inputs.data_fractions)).tolist()  # type: ignore[arg-type]
    neighbours = _neighbours(inputs.images, inputs.nearest[1], inputs.real, datamodule, settings)
    return Report({k: float(v) for k, v in values.items()}, protocol, fractions, neighbours)


def _checked(metric: Metric, values: dict[str, float]) -> dict[str, float]:
    """``values``, once each name is one the metric declares (so its direction is known)."""
    undeclared = [name for name in values if declared(name) not in metric.higher_is_better]
    if undeclared:
        raise ValueError(f"{type(metric).__name__} returned {undeclared}, which its higher_is_better does not "
                         f"name; declare each value it returns there (True, False or None)")
    return values


def _neighbours(images: Tensor, nn_idx: Tensor, ref: dict[str, Any], datamodule: Any, settings: Settings) -> Tensor:
    """The first ``neighbour_rows`` samples, each followed by its nearest real images (uint8)."""
    rows = min(settings.neighbour_rows, len(images))
    real_idx = ref["indices"][nn_idx[:rows]]  # (rows, k) indices into the split
    near = cache.split_tensors(datamodule, settings.real_split, real_idx.flatten())[0]
    return torch.cat([images[:rows, None], near.view(rows, -1, *images.shape[1:])], 1).flatten(0, 1)


def _protocol(datamodule: Any, extractor: FeatureExtractor, settings: Settings, num_real: int,
              classifier: FeatureExtractor | None, record: dict[str, Any] | None) -> dict[str, Any]:
    shape = list(datamodule.image_shape)
    resize = "bilinear to 299x299 (torch-fidelity, TF1-compatible)" if isinstance(extractor, InceptionExtractor) else "none"
    out = {
        "extractor": extractor.name, "extractor_key": extractor.key, "num_fake": settings.num_fake,
        "num_real": num_real, "real_split": settings.real_split, "image_shape": shape, "resize": resize,
        "dataset": cache.dataset_spec(datamodule), "classifier": None, "classifier_accuracy": None,
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k != "cache_dir"},
    }
    if classifier is not None and record is not None:
        out["classifier"] = {"name": classifier.name, "path": record.get("path")}
        out["classifier_accuracy"] = record.get("test_accuracy")
    return out
