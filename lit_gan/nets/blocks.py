"""Pieces shared by the networks."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Activation = Literal["tanh", "sigmoid", "none"]
Norm = Literal["batch", "none", "spectral"]


VALUE_RANGES: dict[str, tuple[float, float]] = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "none": (-1.0, 1.0)}
"""The range of images each output activation produces (for "none", the range of the data it is
trained on: its outputs are not bounded, and samples are clipped to it when turned into pixels):
the one place this mapping lives."""


def output_activation(name: Activation) -> nn.Module:
    """tanh for data in [-1, 1], sigmoid for data in [0, 1], none (R3GAN's and StyleGAN's linear
    output) for data in [-1, 1]."""
    if name not in VALUE_RANGES:
        raise ValueError(f"final_activation must be 'tanh', 'sigmoid' or 'none', got {name!r}")
    return {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "none": nn.Identity}[name]()


def one_hot(labels: Tensor | None, num_classes: int, like: Tensor) -> Tensor:
    """One-hot labels as float (N, K) in the dtype of `like` (N, D); (N, 0) when unconditional."""
    if num_classes == 0:
        return like[:, :0]  # a view: the batch size stays free in a traced graph (lit-gan export)
    if labels is None:
        raise ValueError("this network is conditional: pass class labels")
    return nn.functional.one_hot(labels, num_classes).to(like.dtype)


def normed(layer: nn.Module, norm: Norm) -> nn.Module:
    """Wrap a weight layer in spectral normalisation when asked."""
    return nn.utils.parametrizations.spectral_norm(layer) if norm == "spectral" else layer


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: weights N(0, 0.02), batch-norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def dropout_layer(p: float) -> list[nn.Module]:
    """[Dropout(p)], or nothing for p = 0."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout is a probability and must lie in [0, 1], got {p}")
    return [nn.Dropout(p)] if p > 0 else []


def check_width(width: int) -> int:
    if not (isinstance(width, int) and width >= 1):
        raise ValueError(f"width must be a positive integer, got {width!r}")
    return width


def check_shape(image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    c, h, w = (int(v) for v in image_shape)
    if c < 1 or h < 1 or w < 1:
        raise ValueError(f"image_shape must be (channels, height, width) with positive sizes, got {image_shape}")
    return c, h, w


def flat_size(shape: tuple[int, ...]) -> int:
    return int(torch.tensor(shape).prod())


class Maxout(nn.Module):
    """A fully connected maxout layer (Goodfellow et al. 2013): `pieces` linear maps, element-wise max."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 2) -> None:
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).unflatten(1, (-1, self.pieces)).amax(dim=2)


class MinibatchStd(nn.Module):
    """Appends the batch's mean feature standard deviation as one extra feature (Karras et al.
    2018), so D can see a collapsed, low-variety batch — the classic remedy for mode collapse."""

    def forward(self, x: Tensor) -> Tensor:
        std = x.float().std(dim=0, unbiased=False).mean() if len(x) > 1 else x.new_zeros(())
        return torch.cat([x, std.to(x.dtype).expand(len(x), 1)], dim=1)


def hidden_layer(in_features: int, out_features: int, maxout: int, norm: Norm = "none") -> list[nn.Module]:
    """Linear + ReLU, or a maxout layer with `maxout` pieces when maxout >= 2."""
    if maxout == 1 or maxout < 0:
        raise ValueError(f"maxout takes the number of pieces per unit, at least 2 (0 turns it off), got {maxout}")
    if maxout >= 2:
        return [Maxout(in_features, out_features, maxout)]
    return [normed(nn.Linear(in_features, out_features), norm), nn.ReLU()]


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016): a learned tensor T maps each sample's
    features to `kernels` rows of `kernel_dim`; for each row b, sample i gets
    sum_{j != i} exp(-||M_i,b - M_j,b||_1) over the other samples of the batch, and these
    `kernels` values are appended to its features. D sees how close a sample is to the rest of
    its batch, so a collapsed generator's batches stand out. A batch of one gets zeros."""

    def __init__(self, in_features: int, kernels: int, kernel_dim: int = 5) -> None:
        super().__init__()
        if not (isinstance(kernels, int) and kernels >= 1 and isinstance(kernel_dim, int) and kernel_dim >= 1):
            raise ValueError(f"minibatch discrimination needs positive integer kernels and kernel_dim, got {kernels!r}, {kernel_dim!r}")
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1 / in_features**0.5)

    def forward(self, x: Tensor) -> Tensor:
        m = (x @ self.T.to(x.dtype)).view(len(x), self.kernels, self.kernel_dim).transpose(0, 1)  # (B, N, C)
        closeness = torch.exp(-torch.cdist(m.float(), m.float(), p=1)).sum(2) - 1.0  # minus exp(0): itself
        return torch.cat([x, closeness.t().to(x.dtype)], dim=1)


def check_pack(pack: int, outputs: int) -> int:
    """`pack` (PacGAN's m): a positive integer; a class head needs one output per image, so not with packing."""
    if not (isinstance(pack, int) and not isinstance(pack, bool) and pack >= 1):
        raise ValueError(f"pack is the number of samples D judges together (1: no packing), a positive integer; got {pack!r}")
    if pack > 1 and outputs > 1:
        raise ValueError(f"pack={pack} gives one logit per pack, but a class head (e.g. the aux_classifier term) needs "
                         "class logits for every image: use pack 1 with it")
    return pack


def packed(x: Tensor, pack: int, training: bool) -> Tensor:
    """PacGAN (Lin et al. 2018): (N, C, ...) -> (N / pack, pack * C, ...), consecutive samples side
    by side along the channels. Training batches must divide; outside training (validation's
    last batch, single samples) the last pack is filled up with the batch's first samples."""
    if pack == 1:
        return x
    if len(x) % pack:
        if training:
            raise ValueError(f"a training batch of {len(x)} images cannot be packed in groups of pack={pack}: "
                             "set --data.init_args.batch_size to a multiple of it")
        x = x[torch.arange(-(-len(x) // pack) * pack, device=x.device) % len(x)]
    return x.reshape(len(x) // pack, pack * x.shape[1], *x.shape[2:])


def check_batch_size(data: object, pack: int) -> None:
    """Refuse data whose training batches cannot be packed (called by the model's data check)."""
    batch_size = getattr(data, "batch_size", None)
    if pack > 1 and isinstance(batch_size, int) and batch_size % pack:
        raise ValueError(f"the discriminator packs {pack} images (pack={pack}) but batch_size={batch_size} is not a "
                         f"multiple of it; set --data.init_args.batch_size to e.g. {batch_size - batch_size % pack or pack}")
