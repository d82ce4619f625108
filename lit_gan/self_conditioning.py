"""Self-conditioning: an unconditional GAN whose G and D are told a k-means cluster of the images.

Class labels make a GAN's job easier (one mode at a time), but most data has none. Following
Liu et al. (2020, "Diverse Image Generation via Self-Conditioned GANs"), the training images are
clustered and the cluster stands in for the class: D judges each real image with its cluster, and
G draws a cluster with its z. Here the clusters are found once, at the start of training, by
k-means (scikit-learn) on the images average-pooled to at most 8x8 pixels (the paper clusters D's
features and re-clusters as D learns: costlier, and the clusters move under G).

From the outside the model stays unconditional: :class:`ClusterConditioned` wraps G so that its
cluster is a function of z alone. The cluster comes from z's first coordinate by the inverse CDF of
the clusters' proportions, so z ~ the latent distribution gives clusters in the data's proportions,
and the same z always gives the same image (grids, `predict`, exports and evaluation need nothing
new). In training, G is told the real batch's clusters and z's first coordinate is moved into that
cluster's share of its range, which keeps (z, cluster) distributed as at sampling time.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

POOLED_SIZE = 8
"""Images are average-pooled by a whole factor to at most this many pixels a side before clustering."""
SAMPLE = 10_000
"""Training images clustered (the first of a shuffled epoch); all are then assigned by nearest centroid."""


def pixel_features(images: Tensor) -> Tensor:
    """(N, C, H, W) float images -> (N, C * h * w) float32: average-pooled by the smallest whole factor
    that brings the larger side to at most :data:`POOLED_SIZE` (28 px -> 7x7, 32 or 64 px -> 8x8)."""
    factor = math.ceil(max(images.shape[-2:]) / POOLED_SIZE)
    pooled = F.avg_pool2d(images.float(), factor, ceil_mode=True) if factor > 1 else images.float()
    return pooled.flatten(1)


def kmeans(features: Tensor, k: int, seed: int) -> tuple[Tensor, Tensor]:
    """Centroids (k, D) and cluster proportions (k,) of `features` (N, D) by scikit-learn's k-means."""
    from sklearn.cluster import KMeans

    if len(features) < k:
        raise ValueError(f"clusters={k} needs at least {k} training images, the data has {len(features)}; "
                         "lower --model.init_args.latent.clusters")
    fit = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(features.double().numpy())
    counts = torch.bincount(torch.as_tensor(fit.labels_, dtype=torch.long), minlength=k).double()
    return torch.as_tensor(fit.cluster_centers_, dtype=torch.float32), (counts / counts.sum()).float()


def nearest(features: Tensor, centroids: Tensor) -> Tensor:
    """Each row's nearest centroid (its cluster), int64."""
    return torch.cdist(features, centroids.to(features.device, features.dtype)).argmin(1)


def training_images(datamodule: Any, n: int, value_range: tuple[float, float]) -> Tensor:
    """The first `n` images of a fresh pass over the data module's training loader, as floats in
    `value_range` (the loader shuffles, so this is a sample of the training set)."""
    if datamodule is None or not callable(getattr(datamodule, "train_dataloader", None)):
        raise ValueError("clusters needs the training data as a data module (lit-gan fit --data ...), "
                         "to cluster its images before training")
    low, high = value_range
    images, total = [], 0
    for batch in datamodule.train_dataloader():
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = x.float() * ((high - low) / 255.0) + low if x.dtype == torch.uint8 else x.float()
        images.append(x)
        total += len(x)
        if total >= n:
            break
    return torch.cat(images)[:n]


class ClusterConditioned(nn.Module):
    """A conditional G (built for k classes) that draws its cluster from z: `forward(z)` is an
    unconditional generator; `forward(z, clusters)` places z's first coordinate in those clusters'
    shares of its range first (see the module's docstring)."""

    def __init__(self, generator: nn.Module, k: int, noise: Literal["normal", "uniform"]) -> None:
        super().__init__()
        self.generator, self.noise = generator, noise
        self.register_buffer("proportions", torch.full((k,), 1.0 / k))
        self.value_range = getattr(generator, "value_range", (-1.0, 1.0))

    def _uniform(self, z0: Tensor) -> Tensor:
        """z's first coordinate as a uniform number in [0, 1) (its CDF)."""
        u = (z0 + 1) / 2 if self.noise == "uniform" else 0.5 * (1 + torch.erf(z0 / math.sqrt(2)))
        return u.clamp(0, 1 - 1e-7)

    def _latent(self, u: Tensor, like: Tensor) -> Tensor:
        """The inverse of :meth:`_uniform`."""
        u = u.clamp(1e-7, 1 - 1e-7)
        return (u * 2 - 1 if self.noise == "uniform" else math.sqrt(2) * torch.erfinv(2 * u - 1)).to(like.dtype)

    def check_data(self, data: Any) -> None:
        """The wrapped G's own check of the data, if it has one."""
        if callable(getattr(self.generator, "check_data", None)):
            self.generator.check_data(data)

    def forward(self, z: Tensor, clusters: Tensor | None = None) -> Tensor:
        cdf = torch.cumsum(self.proportions.float(), 0)
        u = self._uniform(z[:, 0].float())
        if clusters is None:
            clusters = (u[:, None] >= cdf[None, :-1]).sum(1)  # the share u falls in (as searchsorted, but exportable to ONNX)
        else:
            start = cdf[clusters] - self.proportions.float()[clusters]
            z = torch.cat([self._latent(start + u * self.proportions.float()[clusters], z)[:, None], z[:, 1:]], 1)
        return self.generator(z, clusters)
