"""Evaluation metrics: feature extractors (Inception-v3, a dataset classifier), torch-fidelity's
FID/KID/IS/precision-recall on feature tensors, mode coverage, nearest neighbours, and the
protocol every number is reported with."""

from lit_gan.metrics.classifier import Classifier
from lit_gan.metrics.evaluate import Report, Settings, evaluate, real_reference
from lit_gan.metrics.extractors import ClassifierExtractor, FeatureExtractor, InceptionExtractor

__all__ = [
    "Classifier",
    "ClassifierExtractor",
    "FeatureExtractor",
    "InceptionExtractor",
    "Report",
    "Settings",
    "evaluate",
    "real_reference",
]
