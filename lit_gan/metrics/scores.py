"""Metrics of feature tensors: torch-fidelity's FID, KID, IS and precision/recall, plus
density/coverage, mode coverage and nearest neighbours.

Conventions: ``real`` and ``fake`` are (N, D) float feature tensors; ``logits`` are (N, K).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Categorical, kl_divergence
from torchmetrics.functional.classification import multiclass_accuracy
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

Stats = dict[str, np.ndarray]
CHUNK = 1024


def fid_statistics(features: Tensor) -> Stats:
    """Mean and covariance (float64) for FID, by torch-fidelity."""
    return fid_features_to_statistics(features.detach().double().cpu())


def fid(stats_1: Stats, stats_2: Stats) -> float:
    """Fréchet distance between two sets of FID statistics, by torch-fidelity."""
    return float(fid_statistics_to_metric(stats_1, stats_2, verbose=False)[KEY_METRIC_FID])


def kid(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 2020) -> tuple[float, float]:
    """KID mean and std over ``subsets`` random subsets (cubic polynomial kernel), by torch-fidelity;
    the subset size is capped at the smaller set."""
    size = min(subset_size, len(real), len(fake))
    out = kid_features_to_metric(fake.float().cpu(), real.float().cpu(), kid_subsets=subsets, kid_subset_size=size,
                                 rng_seed=seed, verbose=False)
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]


def inception_score(logits: Tensor, splits: int = 10, seed: int = 2020) -> tuple[float, float]:
    """IS mean and std over ``splits`` splits of shuffled samples, by torch-fidelity."""
    out = isc_features_to_metric(logits.float().cpu(), splits=min(splits, len(logits)), shuffle=True, rng_seed=seed)
    return out[KEY_METRIC_ISC_MEAN], out[KEY_METRIC_ISC_STD]


def precision_recall(real: Tensor, fake: Tensor, neighbourhood: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al.) with k = ``neighbourhood``, by torch-fidelity
    (distance blocks of its default 10,000 x 10,000: smaller blocks are several times slower)."""
    out = prc_features_to_metric(fake.float().cpu(), real.float().cpu(), prc_neighborhood=neighbourhood,
                                 save_cpu_ram=True, verbose=False)
    return out[KEY_METRIC_PRECISION], out[KEY_METRIC_RECALL]


def nearest(query: Tensor, reference: Tensor, k: int = 1, exclude_self: bool = False) -> tuple[Tensor, Tensor]:
    """Euclidean distances and indices (N, k) of each query's k nearest references (chunked);
    ``exclude_self`` when ``query`` is ``reference`` (skips each point's own zero distance)."""
    query, reference = query.float(), reference.float()
    dists, idxs = [], []
    for start in range(0, len(query), CHUNK):
        d = torch.cdist(query[start : start + CHUNK], reference)
        if exclude_self:
            rows = torch.arange(len(d))
            d[rows, rows + start] = float("inf")
        values, indices = d.topk(k, dim=1, largest=False)
        dists.append(values), idxs.append(indices)
    return torch.cat(dists), torch.cat(idxs)


def density_coverage(real: Tensor, fake: Tensor, k: int = 5, radii: Tensor | None = None) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020): balls around each real point reach its k-th
    nearest real neighbour; density = mean number of balls holding a fake point / k, coverage =
    fraction of balls holding at least one fake point. ``radii`` (from :func:`nearest`) can be cached."""
    if radii is None:
        radii = nearest(real, real, k, exclude_self=True)[0][:, -1]
    inside, covered = 0.0, torch.zeros(len(real), dtype=torch.bool)
    for chunk in fake.float().split(CHUNK):
        within = torch.cdist(chunk, real.float()) < radii
        inside += float(within.sum())
        covered |= within.any(0)
    return inside / (k * len(fake)), float(covered.float().mean())


def class_fractions(labels: Tensor, num_classes: int) -> Tensor:
    """Histogram of class ids as fractions (sums to 1)."""
    counts = torch.bincount(labels.long().cpu(), minlength=num_classes).double()
    return counts / counts.sum().clamp_min(1)


def mode_coverage(predicted: Tensor, data_fractions: Tensor, cover_ratio: float = 0.25) -> dict[str, Any]:
    """Mode coverage of generated samples from their predicted classes.

    A class is *covered* when its share of the generated samples is at least ``cover_ratio``
    times its share of the data (the callback's 0.25: 250 of 10,000 samples for a tenth of the
    data, above the few percent a good classifier misassigns). ``class_kl`` is KL(generated ||
    data) of the class histograms (0: same proportions; log K for a generator collapsed onto one
    of K equal classes).
    """
    data = data_fractions.double()
    fractions = class_fractions(predicted, len(data))
    covered = int(((fractions >= cover_ratio * data) & (data > 0) & (fractions > 0)).sum())
    kl = float(kl_divergence(Categorical(probs=fractions), Categorical(probs=data)))
    return {"classes_covered": covered, "class_kl": kl, "class_fractions": fractions.tolist()}


def label_accuracy(predicted: Tensor, labels: Tensor) -> float:
    """Fraction of generated samples classified as the label they were generated for."""
    return float((predicted.cpu() == labels.cpu()).double().mean())


def label_accuracy_per_class(predicted: Tensor, labels: Tensor, num_classes: int) -> dict[int, float]:
    """Label accuracy of the samples generated for each class that was asked for."""
    accuracy = multiclass_accuracy(predicted.cpu(), labels.cpu(), num_classes, average=None)
    return {c: float(accuracy[c]) for c in labels.unique().tolist()}
