"""The evaluation metrics by name (:data:`METRICS`): each a small :class:`Metric` that says which
values it produces, whether higher is better for each, and what it reads; :func:`~lit_gan.metrics.evaluate`
runs every registered metric whose inputs the evaluation has, in order.

Adding one is a class and a line, also from your own code::

    class Sharpness(Metric):
        higher_is_better = {"sharpness": True}

        def compute(self, images: Tensor) -> dict[str, float]:
            return {"sharpness": ...}

    METRICS["sharpness"] = Sharpness()  # logged as val/sharpness; --checkpoint.monitor val/sharpness keeps the highest

The math is torch-fidelity's and torchmetrics' (:mod:`lit_gan.metrics.scores`).
"""

from __future__ import annotations

import inspect
import math
import re
import time
from typing import Any, ClassVar

from torch import Tensor

from lit_gan.metrics import scores
from lit_gan.metrics.modes import summary
from lit_gan.metrics.settings import Settings

CLASS = "<c>"
"""Stands for a class id in a declared name: ``fid_class/<c>`` covers ``fid_class/0``, ``fid_class/1``, ..."""


class Metric:
    """One metric: ``higher_is_better`` names each value it produces (True: higher is better;
    False: lower is; None: not a quality but a reference, a spread or a time, which no checkpoint
    is chosen by); ``compute`` returns them as ``{name: number}``. Its parameters name the inputs it
    reads (:class:`~lit_gan.metrics.evaluate.Inputs`, e.g. ``features``, ``real``, ``settings``, or
    ``values``: those of the metrics before it); it runs when the evaluation has them all."""

    higher_is_better: ClassVar[dict[str, bool | None]] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.higher_is_better)

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.compute).parameters)

    def compute(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        raise NotImplementedError


class FID(Metric):
    higher_is_better = {"fid": False}

    def compute(self, features: Tensor, real: dict[str, Any]) -> dict[str, float]:
        return {"fid": scores.fid(real["stats"], scores.fid_statistics(features))}


class KID(Metric):
    higher_is_better = {"kid_mean": False, "kid_std": None}

    def compute(self, features: Tensor, real: dict[str, Any], settings: Settings) -> dict[str, float]:
        mean, std = scores.kid(real["features"], features, settings.kid_subsets, settings.kid_subset_size, settings.seed)
        return {"kid_mean": mean, "kid_std": std}


class InceptionScore(Metric):
    """IS of the samples, and of the real images as the reference."""

    higher_is_better = {"is_mean": True, "is_std": None, "is_real_mean": None, "is_real_std": None}

    def compute(self, logits: Tensor, real: dict[str, Any], settings: Settings) -> dict[str, float]:
        mean, std = scores.inception_score(logits, settings.is_splits, settings.seed)
        return {"is_mean": mean, "is_std": std, "is_real_mean": real["inception_score"][0],
                "is_real_std": real["inception_score"][1]}


class PrecisionRecall(Metric):
    higher_is_better = {"precision": True, "recall": True}

    def compute(self, features: Tensor, real: dict[str, Any], settings: Settings) -> dict[str, float]:
        precision, recall = scores.precision_recall(real["features"], features, settings.prc_neighbourhood)
        return {"precision": precision, "recall": recall}


class DensityCoverage(Metric):
    higher_is_better = {"density": True, "coverage": True}

    def compute(self, features: Tensor, real: dict[str, Any], settings: Settings) -> dict[str, float]:
        density, coverage = scores.density_coverage(real["features"], features, settings.dc_neighbourhood, real["radii"])
        return {"density": density, "coverage": coverage}


class NearestNeighbour(Metric):
    """Mean distance of a sample to its nearest real image (a memorisation check, not a quality),
    and of real images among themselves."""

    higher_is_better = {"nn_distance": None, "nn_distance_real": None}

    def compute(self, nearest: tuple[Tensor, Tensor], real: dict[str, Any]) -> dict[str, float]:
        return {"nn_distance": float(nearest[0][:, 0].mean()), "nn_distance_real": real["nn_distance"]}


class ClassifierFID(Metric):
    """FID in the dataset classifier's features, beside another extractor's (e.g. Inception's)."""

    higher_is_better = {"fid_classifier": False}

    def compute(self, class_features: Tensor, class_real: dict[str, Any]) -> dict[str, float]:
        return {"fid_classifier": scores.fid(class_real["stats"], scores.fid_statistics(class_features))}


class ClassCoverage(Metric):
    higher_is_better = {"classes_covered": True, "class_kl": False}

    def compute(self, predicted: Tensor, data_fractions: Tensor, settings: Settings) -> dict[str, float]:
        coverage = scores.mode_coverage(predicted, data_fractions, settings.cover_ratio)
        return {"classes_covered": coverage["classes_covered"], "class_kl": coverage["class_kl"]}


class LabelAccuracy(Metric):
    """Conditional models: samples classified as the label asked for, overall and per class."""

    higher_is_better = {"label_accuracy": True, f"label_accuracy_class/{CLASS}": True}

    def compute(self, predicted: Tensor, labels: Tensor, data_fractions: Tensor) -> dict[str, float]:
        per_class = scores.label_accuracy_per_class(predicted, labels, len(data_fractions))
        return {"label_accuracy": scores.label_accuracy(predicted, labels),
                **{f"label_accuracy_class/{c}": v for c, v in per_class.items()}}


class ClassFID(Metric):
    """Conditional models: FID of the samples asked for each class against that class's real images."""

    higher_is_better = {f"fid_class/{CLASS}": False, "fid_class_mean": False}

    def compute(self, features: Tensor, labels: Tensor, real: dict[str, Any]) -> dict[str, float]:
        per_class = {c: scores.fid(stats, scores.fid_statistics(features[labels == c]))
                     for c, stats in real["class_stats"].items() if int((labels == c).sum()) >= 2}
        out = {f"fid_class/{c}": v for c, v in per_class.items()}
        return {**out, "fid_class_mean": sum(per_class.values()) / len(per_class)} if per_class else out


class ClassifierAccuracy(Metric):
    """The classifier's own test accuracy: how far its class metrics can be trusted."""

    higher_is_better = {"classifier_accuracy": None}

    def compute(self, record: dict[str, Any]) -> dict[str, float]:
        return {"classifier_accuracy": record["test_accuracy"]}


class Modes(Metric):
    """Data with many discrete modes (StackedMNIST): modes reached by ``mode_samples`` samples and
    KL(generated || uniform), beside the same of as many real images and the largest KL, log K."""

    higher_is_better = {"modes": True, "mode_kl": False, "modes_real": None, "mode_kl_real": None,
                        "mode_kl_max": None, "mode_seconds": None}

    def compute(self, modes: dict[str, Any]) -> dict[str, float]:
        real = modes["real"]
        return {**summary(modes["predicted"], modes["num_modes"]), "modes_real": real["modes"],
                "mode_kl_real": real["mode_kl"], "mode_kl_max": math.log(modes["num_modes"]),
                "mode_seconds": time.perf_counter() - modes["start"]}


class Seconds(Metric):
    """The evaluation's duration (the metrics that need ``start`` run last)."""

    higher_is_better = {"eval_seconds": None}

    def compute(self, start: float) -> dict[str, float]:
        return {"eval_seconds": time.perf_counter() - start}


METRICS: dict[str, Metric] = {
    "fid": FID(),
    "kid": KID(),
    "is": InceptionScore(),
    "precision_recall": PrecisionRecall(),
    "density_coverage": DensityCoverage(),
    "nn_distance": NearestNeighbour(),
    "fid_classifier": ClassifierFID(),
    "class_coverage": ClassCoverage(),
    "label_accuracy": LabelAccuracy(),
    "fid_class": ClassFID(),
    "classifier_accuracy": ClassifierAccuracy(),
    "modes": Modes(),
    "eval_seconds": Seconds(),
}
"""Every metric the evaluation computes, by name. ``METRICS["name"] = MyMetric()`` adds one."""

STAGES = ("val/", "test/")


def directions() -> dict[str, bool | None]:
    """Every value name the registered metrics produce, with its ``higher_is_better``."""
    return {name: better for metric in METRICS.values() for name, better in metric.higher_is_better.items()}


def declared(name: str) -> str:
    """The declared form of a value's name: a trailing class id becomes ``<c>`` (``fid_class/3`` -> ``fid_class/<c>``)."""
    return re.sub(r"/\d+$", f"/{CLASS}", name)


def higher_is_better(logged: str) -> bool | None:
    """Whether a higher ``val/<name>`` (or ``test/<name>``) is better, by the metric that produces it
    (None: not a quality); KeyError when no registered metric produces it."""
    stage = next((s for s in STAGES if logged.startswith(s)), None)
    known = directions()
    if stage is None or declared(logged[len(stage):]) not in known:
        raise KeyError(logged)
    return known[declared(logged[len(stage):])]


def qualities() -> list[str]:
    """The logged names a best checkpoint may be chosen by (``val/<name>`` of every value with a direction)."""
    return [f"val/{name}" for name, better in directions().items() if better is not None]
