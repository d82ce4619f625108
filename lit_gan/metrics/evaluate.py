"""Evaluate a generator against a data module: real reference (cached), samples, every metric.

:func:`evaluate` is what the :class:`~lit_gan.callbacks.Evaluation` callback runs; it works
without a Trainer too (scripts, benchmarks).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from lit_gan.errors import Diverged
from lit_gan.images import to_uint8
from lit_gan.metrics import cache, scores
from lit_gan.metrics.extractors import FeatureExtractor, InceptionExtractor
from lit_gan.progress import bar

REFERENCE_VERSION = 1
"""Bump when the content of cached real references changes."""


@dataclass
class Settings:
    """What an evaluation computes, and on how many samples (all of it is part of the protocol).

    Args:
        num_fake: generated samples.
        num_real: real images of ``real_split`` (a seeded subset; None: the whole split).
        real_split: the real reference: "train", "val" or "test". The Evaluation callback uses it
            for validation (fit, validate); its ``test`` always takes "test" (and ``seed`` plus
            ``lit_gan.callbacks.metrics.TEST_SEED_OFFSET``).
        batch_size: images per generator / extractor call.
        kid_subsets: KID is the mean ± std over this many random subsets.
        kid_subset_size: images per KID subset (capped at the smaller set).
        is_splits: IS is the mean ± std over this many splits.
        prc_neighbourhood: k of precision/recall (torch-fidelity's default 3).
        dc_neighbourhood: k of density/coverage (Naeem et al.'s 5).
        cover_ratio: a class is covered when its share of the samples is >= cover_ratio x its
            share of the data (0.25: 2.5% of the samples for one of ten equal classes; keep it
            above the classifier's confusion, or misclassified samples "cover" classes).
        neighbour_rows: generated samples in the nearest-neighbour picture, one per row.
        neighbour_k: real images beside each of them: its nearest in feature space.
        seed: seed of the noise, the labels asked for and the real subset.
    """

    num_fake: int = 5000
    num_real: int | None = 5000
    real_split: Literal["train", "val", "test"] = "train"
    batch_size: int = 250
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    prc_neighbourhood: int = 3
    dc_neighbourhood: int = 5
    cover_ratio: float = 0.25
    neighbour_rows: int = 8
    neighbour_k: int = 3
    seed: int = 0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        real_ok = self.num_real is None or (_is_int(self.num_real) and self.num_real >= 6)
        if not (_is_int(self.num_fake) and self.num_fake >= 4 and real_ok):
            raise ValueError(f"evaluation needs num_fake >= 4 and num_real >= 6 (or None: the whole split); got "
                             f"{self.num_fake!r}, {self.num_real!r}; raise --evaluation.settings.num_fake / num_real")
        for name, minimum in _MINIMUMS.items():
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                raise ValueError(f"evaluation setting {name} must be an integer >= {minimum}, got {value!r}; set "
                                 f"--evaluation.settings.{name} (default {_DEFAULTS[name]})")
        if self.real_split not in ("train", "val", "test"):
            raise ValueError(f"real_split must be 'train', 'val' or 'test', got {self.real_split!r}; set "
                             "--evaluation.settings.real_split")
        if isinstance(self.cover_ratio, bool) or not isinstance(self.cover_ratio, (int, float)) or not self.cover_ratio > 0:
            raise ValueError(f"cover_ratio must be a number > 0, got {self.cover_ratio!r}; set "
                             f"--evaluation.settings.cover_ratio (default {_DEFAULTS['cover_ratio']})")
        k = max(self.prc_neighbourhood, self.dc_neighbourhood, self.neighbour_k)
        if self.num_fake <= self.prc_neighbourhood or (self.num_real is not None and self.num_real <= k):
            raise ValueError(f"the neighbourhoods (prc_neighbourhood {self.prc_neighbourhood}, dc_neighbourhood "
                             f"{self.dc_neighbourhood}, neighbour_k {self.neighbour_k}) need more images than "
                             f"their size; got num_fake {self.num_fake}, num_real {self.num_real}: raise "
                             "--evaluation.settings.num_fake / num_real or lower the neighbourhoods")

    @classmethod
    def parse(cls, value: Settings | Mapping[str, Any]) -> Settings:
        """`Settings` from itself or from a mapping (as configs deliver it)."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"evaluation settings must be a Settings or a mapping of its fields, got "
                            f"{type(value).__name__}: {value!r}")
        unknown = sorted(set(value) - set(_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown evaluation settings {unknown}; valid: {', '.join(_DEFAULTS)}")
        return cls(**value)


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Settings)}
_MINIMUMS: dict[str, int] = {"batch_size": 1, "kid_subsets": 1, "kid_subset_size": 2, "is_splits": 1,
                             "prc_neighbourhood": 1, "dc_neighbourhood": 1, "neighbour_rows": 1, "neighbour_k": 1,
                             "seed": 0}
"""The smallest value of each integer setting but num_fake and num_real (checked together)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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


def extract(extractor: FeatureExtractor, images: Tensor, batch_size: int, desc: str = "") -> tuple[Tensor, Tensor]:
    """Features and logits of uint8 ``images``, ``batch_size`` at a time (a progress bar named ``desc``)."""
    chunks = images.split(batch_size)
    parts = [extractor(chunk) for chunk in bar(chunks, len(chunks), desc, "batch", enabled=bool(desc))]
    return torch.cat([f for f, _ in parts]), torch.cat([lg for _, lg in parts])


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


def evaluate(model: Any, datamodule: Any, extractor: FeatureExtractor, settings: Settings,
             classifier: FeatureExtractor | None = None, classifier_record: dict[str, Any] | None = None,
             progress: bool = False) -> Report:
    """Every metric of ``model``'s samples against ``datamodule``'s real images.

    ``extractor`` gives FID, KID, IS, precision/recall, density/coverage and nearest neighbours;
    ``classifier`` (a dataset classifier, possibly the extractor itself) gives class predictions:
    mode coverage and, for conditional models (``model.conditional``), label accuracy and
    per-class FID, and, when it is not the extractor, ``fid_classifier``: FID in its features, beside
    the extractor's (e.g. Inception's). ``classifier_record["test_accuracy"]`` goes into the protocol.
    ``progress``: progress bars for the real statistics, the samples and their features.
    """
    start = time.perf_counter()
    ref = real_reference(datamodule, extractor, settings, progress)
    num_classes = datamodule.num_classes if datamodule.num_classes >= 2 else 0
    data_fractions = scores.class_fractions(ref["labels"], num_classes) if num_classes else None
    conditional = bool(getattr(model, "conditional", False)) and data_fractions is not None
    labels = None
    if conditional:
        drawn = torch.Generator().manual_seed(settings.seed)
        labels = torch.multinomial(data_fractions.float(), settings.num_fake, replacement=True, generator=drawn)
    images = generate(model, settings.num_fake, labels, settings, tuple(model.value_range), progress)
    features, logits = extract(extractor, images, settings.batch_size, "sample features" if progress else "")
    real = ref["features"]

    m: dict[str, float] = {"fid": scores.fid(ref["stats"], scores.fid_statistics(features))}
    m["kid_mean"], m["kid_std"] = scores.kid(real, features, settings.kid_subsets, settings.kid_subset_size, settings.seed)
    m["is_mean"], m["is_std"] = scores.inception_score(logits, settings.is_splits, settings.seed)
    m["is_real_mean"], m["is_real_std"] = ref["inception_score"]
    m["precision"], m["recall"] = scores.precision_recall(real, features, settings.prc_neighbourhood)
    m["density"], m["coverage"] = scores.density_coverage(real, features, settings.dc_neighbourhood, ref["radii"])
    nn_dist, nn_idx = scores.nearest(features, real, settings.neighbour_k)
    m["nn_distance"], m["nn_distance_real"] = float(nn_dist[:, 0].mean()), ref["nn_distance"]

    fractions = None
    class_logits = logits
    if classifier is not None and classifier is not extractor:
        class_ref = real_reference(datamodule, classifier, settings, progress)
        class_features, class_logits = extract(classifier, images, settings.batch_size)
        m["fid_classifier"] = scores.fid(class_ref["stats"], scores.fid_statistics(class_features))
    if classifier is not None and data_fractions is not None:
        fractions = _class_metrics(m, class_logits.argmax(1), labels, features, ref, data_fractions, settings)
    neighbours = _neighbours(images, nn_idx, ref, datamodule, settings)
    m["eval_seconds"] = time.perf_counter() - start
    protocol = _protocol(datamodule, extractor, settings, len(real), classifier, classifier_record)
    if protocol.get("classifier_accuracy") is not None:
        m["classifier_accuracy"] = protocol["classifier_accuracy"]
    return Report({k: float(v) for k, v in m.items()}, protocol, fractions, neighbours)


def _class_metrics(m: dict[str, float], predicted: Tensor, labels: Tensor | None, features: Tensor,
                   ref: dict[str, Any], data_fractions: Tensor, settings: Settings) -> list[float]:
    """Adds mode coverage (and for conditional samples, ``labels`` given: label accuracy and
    per-class label accuracy and FID) to ``m``; returns the predicted-class histogram."""
    coverage = scores.mode_coverage(predicted, data_fractions, settings.cover_ratio)
    fractions = coverage.pop("class_fractions")
    m.update(coverage)
    if labels is not None:
        m["label_accuracy"] = scores.label_accuracy(predicted, labels)
        per_label = scores.label_accuracy_per_class(predicted, labels, len(data_fractions))
        m.update({f"label_accuracy_class/{c}": v for c, v in per_label.items()})
        per_class = {c: scores.fid(stats, scores.fid_statistics(features[labels == c]))
                     for c, stats in ref["class_stats"].items() if int((labels == c).sum()) >= 2}
        m.update({f"fid_class/{c}": v for c, v in per_class.items()})
        if per_class:
            m["fid_class_mean"] = sum(per_class.values()) / len(per_class)
    return fractions


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
