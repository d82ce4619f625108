"""R3GAN's networks (Huang et al. 2024, "The GAN is dead; long live the GAN!"): a plain ResNet
without normalization layers. Every residual branch is a bottleneck 1x1 -> grouped 3x3 -> 1x1
(expanded by `expansion`, groups of `group_size` channels) with leaky ReLU(0.2); stages change
resolution with bilinear upsampling in G and 2x2 average pooling in D and change width with a
1x1 convolution. Initialisation is fix-up style: He-normal weights, the first two convolutions
of a branch scaled by L^(-1/4) (L residual blocks in the network, 3 convolutions per branch:
L^(-1/(2m-2))), the last one zero, so every block starts as the identity.

G starts from a learned basis of `start` x `start` maps (4, or 7 for 28 px) modulated per
channel by a linear map of z (and the class embedding) and ends in a 1x1 convolution to the
image; D starts with a 1x1 convolution and ends in a depthwise `start` x `start` convolution to
one vector, a linear head, and for class labels a projection term <embed(y), features>.
Channels are `width` at the image's resolution and double with each halving of it, up to
8 x `width`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gan.nets.blocks import VALUE_RANGES, Activation, check_shape, check_width, one_hot, output_activation

LEAKY = 0.2
GAIN = math.sqrt(2.0 / (1.0 + LEAKY**2))
"""He's gain of leaky ReLU(0.2): keeps activations at unit variance."""


def he_init(layer: nn.Conv2d | nn.Linear, gain: float = 1.0) -> nn.Module:
    """Weights N(0, (gain / sqrt(fan_in))^2) (zero for gain 0), biases 0."""
    if gain:
        nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(layer.weight[0].numel()))  # fan-in
    else:
        nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def conv(c_in: int, c_out: int, kernel: int = 1, groups: int = 1, gain: float = 1.0, bias: bool = True, pad: bool = True) -> nn.Module:
    """A He-initialised convolution, size-preserving (odd kernels) unless `pad` is False."""
    return he_init(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2 if pad else 0, groups=groups, bias=bias), gain)


class Bottleneck(nn.Module):
    """x + 1x1 -> act -> grouped 3x3 -> act -> 1x1 (zero-initialised), `blocks` of them in the net."""

    def __init__(self, channels: int, expansion: int, group_size: int, blocks: int) -> None:
        super().__init__()
        hidden = channels * expansion
        gain = GAIN * blocks ** (-1 / 4)  # L^(-1/(2m-2)) with m = 3 convolutions per branch
        self.branch = nn.Sequential(
            conv(channels, hidden, gain=gain), nn.LeakyReLU(LEAKY),
            conv(hidden, hidden, 3, groups=hidden // group_size, gain=gain), nn.LeakyReLU(LEAKY),
            conv(hidden, channels, gain=0.0, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


Blocks = int | list[int]
"""Residual blocks per resolution: one number for all, or one per resolution from the lowest up."""


def plan(image_shape: tuple[int, int, int], width: int, blocks: Blocks, expansion: int, group_size: int,
         net: str) -> tuple[list[int], list[int]]:
    """Channels and blocks per resolution, from `start` px up to the image's size; checks every option."""
    _, h, w = check_shape(image_shape)
    check_width(width)
    if h != w:
        raise ValueError(f"{net} needs square images, got {h}x{w}; set --data.init_args.image_size to one side length")
    levels, size = 1, h
    while size % 2 == 0 and size // 2 >= 4:
        size, levels = size // 2, levels + 1
    if levels < 2 or size > 7:
        raise ValueError(f"{net} cannot work at {h}x{w}: the side must halve down to 4 to 7 pixels "
                         "(e.g. 28, 32 or 64); set --data.init_args.image_size accordingly")
    per_level = [blocks] * levels if isinstance(blocks, int) else list(blocks)
    if len(per_level) != levels or not all(isinstance(b, int) and b >= 0 for b in per_level) or not sum(per_level):
        raise ValueError(f"{net} blocks must be a positive integer or {levels} integers >= 0 (one per resolution "
                         f"from {size} px up to {h} px), got {blocks!r}")
    for key, value in (("expansion", expansion), ("group_size", group_size)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{net} {key} must be a positive integer, got {value!r}")
    if (width * expansion) % group_size:
        raise ValueError(f"{net}: group_size {group_size} must divide width x expansion = {width * expansion}; "
                         "e.g. group_size 8 or 16 with width 16, 32 or 64")
    return [width * min(2 ** (levels - 1 - i), 8) for i in range(levels)], per_level


def _stage(channels: int, blocks: int, expansion: int, group_size: int, total: int) -> list[nn.Module]:
    return [Bottleneck(channels, expansion, group_size, total) for _ in range(blocks)]


class Upsample(nn.Module):
    """A 1x1 convolution to the next stage's channels, then 2x bilinear upsampling."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = conv(c_in, c_out, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(self.conv(x), scale_factor=2, mode="bilinear", align_corners=False)


class R3GANGenerator(nn.Module):
    """z (and labels) -> a learned `start` x `start` basis modulated per channel -> stages of
    `blocks` bottleneck blocks, 2x bilinear upsampling between them -> a 1x1 convolution.

    Args:
        width: channels at the image's resolution (doubling per halving of it, at most 8x).
        blocks: residual blocks per resolution (R3GAN: 2), or a list, one per resolution from the
            lowest up (e.g. [2, 2, 1] at 28 px: fewer blocks where convolutions cost most).
        expansion: channel expansion inside each bottleneck (R3GAN: 2).
        group_size: channels per group of the 3x3 convolutions (R3GAN: 16).
        embedding: size of the class embedding concatenated to z (conditional G; 0: latent_dim).
        final_activation: "tanh" for data in [-1, 1], "sigmoid" for [0, 1].
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        num_classes: int = 0,
        width: int = 32,
        blocks: Blocks = 2,
        expansion: int = 2,
        group_size: int = 16,
        embedding: int = 0,
        final_activation: Activation = "tanh",
    ) -> None:
        super().__init__()
        channels, counts = plan(image_shape, width, blocks, expansion, group_size, "R3GANGenerator")
        self.value_range = VALUE_RANGES.get(final_activation, (-1.0, 1.0))
        self.num_classes, self.start, total = num_classes, image_shape[1] >> (len(channels) - 1), sum(counts)
        embedding = (embedding or latent_dim) if num_classes else 0
        self.embed = he_init(nn.Linear(num_classes, embedding, bias=False)) if num_classes else None
        self.basis = nn.Parameter(torch.randn(channels[0], self.start, self.start))
        self.modulation = he_init(nn.Linear(latent_dim + embedding, channels[0], bias=False))
        layers = _stage(channels[0], counts[0], expansion, group_size, total)
        for c_in, c_out, n in zip(channels, channels[1:], counts[1:]):
            layers += [Upsample(c_in, c_out), *_stage(c_out, n, expansion, group_size, total)]
        self.stages = nn.Sequential(*layers)
        self.to_image = nn.Sequential(conv(channels[-1], image_shape[0]), output_activation(final_activation))

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(one_hot(labels, self.num_classes, z))], dim=1)
        x = self.basis * self.modulation(z)[:, :, None, None]
        return self.to_image(self.stages(x))


class Downsample(nn.Module):
    """2x2 average pooling (a box filter), then a 1x1 convolution to the next stage's channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = conv(c_in, c_out, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.avg_pool2d(x, 2))


class R3GANDiscriminator(nn.Module):
    """A 1x1 convolution from the image -> stages of `blocks` bottleneck blocks, 2x2 average
    pooling between them -> a depthwise `start` x `start` convolution -> a linear head with
    `outputs` logits; with labels, plus the projection <embed(y), features> on the first logit
    (Miyato & Koyama 2018, as R3GAN conditions D). Options as R3GANGenerator's."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_classes: int = 0,
        outputs: int = 1,
        width: int = 32,
        blocks: Blocks = 2,
        expansion: int = 2,
        group_size: int = 16,
    ) -> None:
        super().__init__()
        channels, counts = (v[::-1] for v in plan(image_shape, width, blocks, expansion, group_size, "R3GANDiscriminator"))
        self.num_classes, self.outputs = num_classes, outputs
        start, total = image_shape[1] >> (len(channels) - 1), sum(counts)
        layers: list[nn.Module] = [conv(image_shape[0], channels[0])]
        for c_in, c_out, n in zip(channels, channels[1:], counts):
            layers += [*_stage(c_in, n, expansion, group_size, total), Downsample(c_in, c_out)]
        layers += _stage(channels[-1], counts[-1], expansion, group_size, total)
        layers += [conv(channels[-1], channels[-1], start, groups=channels[-1], bias=False, pad=False), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = he_init(nn.Linear(channels[-1], outputs))
        self.embed = nn.Embedding(num_classes, channels[-1]) if num_classes else None
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, 0.0, 1.0 / math.sqrt(channels[-1]))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.features(x)
        out = self.head(h)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass class labels")
            out = out + F.pad((self.embed(labels).to(h.dtype) * h).sum(1, keepdim=True), (0, self.outputs - 1))
        return out.squeeze(1) if self.outputs == 1 else out
