"""Evaluation metrics: feature extractors (Inception-v3, a dataset classifier), the registry of
metrics (FID/KID/IS/precision-recall on feature tensors by torch-fidelity, mode coverage, nearest
neighbours, ...; :data:`METRICS`), and the protocol every number is reported with."""

from lit_gan.metrics.classifier import Classifier
from lit_gan.metrics.evaluate import Report, Settings, evaluate, real_reference
from lit_gan.metrics.extractors import ClassifierExtractor, FeatureExtractor, InceptionExtractor
from lit_gan.metrics.registry import METRICS, Metric
from lit_gan.trust import trust_classes

__all__ = [
    "METRICS",
    "Classifier",
    "ClassifierExtractor",
    "FeatureExtractor",
    "InceptionExtractor",
    "Metric",
    "Report",
    "Settings",
    "evaluate",
    "real_reference",
]

trust_classes(__name__, [Classifier])
