"""DCGAN networks (Radford et al. 2016): 5x5 stride-2 convolutions with 64-128-256-512
channels in D at 64 px, transposed convolutions mirroring them in G, batch norm, ReLU in G,
LeakyReLU(0.2) in D. The depth follows the image size (28, 32, 64, ...)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from lit_gan.nets.blocks import (
    VALUE_RANGES,
    Activation,
    MinibatchDiscrimination,
    MinibatchStd,
    Norm,
    check_batch_size,
    check_pack,
    check_shape,
    check_width,
    dcgan_init,
    dropout_layer,
    normed,
    one_hot,
    output_activation,
    packed,
)


def generator_stages(size: int) -> int:
    """How many 2x upsamplings build `size` from a start of at least 4 pixels (28 -> 7 -> 2)."""
    stages = 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        stages += 1
    return stages


def _square_size(image_shape: tuple[int, int, int], net: str) -> int:
    _, h, w = check_shape(image_shape)
    if h != w:
        raise ValueError(f"{net} needs square images, got {h}x{w}; set --data.init_args.image_size to one side length")
    if h < 8 or generator_stages(h) == 0:
        raise ValueError(
            f"{net} cannot produce {h}x{w} images: the side must be even and at least 8 "
            "(e.g. 28, 32 or 64); set --data.init_args.image_size accordingly"
        )
    return h


class DCGANGenerator(nn.Module):
    """z (and one-hot labels) -> a linear projection to `start` x `start` -> transposed
    convolutions, each doubling the size and halving the channels, down to the image.

    Args:
        width: channels of the last hidden stage (doubling towards the projection).
        dropout: dropout after each hidden stage.
        final_activation: "tanh" for data in [-1, 1], "sigmoid" for [0, 1].
        norm: "batch" (DCGAN's) or "none" (no statistics over the batch: a batch split into
            micro-batches, `accumulate_grad_batches`, then trains exactly as the whole).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        num_classes: int = 0,
        width: int = 64,
        dropout: float = 0.0,
        final_activation: Activation = "tanh",
        norm: Literal["batch", "none"] = "batch",
    ) -> None:
        super().__init__()
        size = _square_size(image_shape, "DCGANGenerator")
        check_width(width)
        self.value_range = VALUE_RANGES.get(final_activation, (-1.0, 1.0))
        self.num_classes, stages = num_classes, generator_stages(size)
        self.start = size >> stages
        channels = [width * 2 ** (stages - 1 - i) for i in range(stages)] + [image_shape[0]]
        if norm not in ("batch", "none"):
            raise ValueError(f"DCGANGenerator norm must be 'batch' or 'none', got {norm!r}")
        batch_norm = norm == "batch"
        bn = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())  # noqa: E731
        self.project = nn.Sequential(
            nn.Linear(latent_dim + num_classes, channels[0] * self.start**2, bias=not batch_norm),
            nn.Unflatten(1, (channels[0], self.start, self.start)),
            bn(channels[0]),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for i in range(stages):
            last = i == stages - 1
            layers.append(nn.ConvTranspose2d(channels[i], channels[i + 1], 5, 2, 2, output_padding=1, bias=last or not batch_norm))
            layers += [output_activation(final_activation)] if last else [bn(channels[i + 1]), nn.ReLU(), *dropout_layer(dropout)]
        self.upsample = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.upsample(self.project(torch.cat([z, one_hot(labels, self.num_classes, z)], dim=1)))


class DCGANDiscriminator(nn.Module):
    """Strided convolutions, doubling the channels from `width`, down to 4x4 or less, then a
    linear head with `outputs` logits. Labels enter as one extra input channel: a learned
    per-class map of the image's size.

    Args:
        width: channels of the first convolution.
        dropout: dropout after each convolution.
        norm: "batch" (DCGAN), "none" (gradient-penalty critics) or "spectral" (SNGAN).
        minibatch_std: append the batch's feature standard deviation before the head.
        minibatch_discrimination: kernels of a minibatch discrimination layer (Salimans et al.
            2016) before the head, e.g. 100 (0: none).
        pack: judge this many samples together, stacked along the channels (PacGAN, Lin et al.
            2018): one logit per pack; batch sizes must be multiples of it (1: no packing).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_classes: int = 0,
        outputs: int = 1,
        width: int = 64,
        dropout: float = 0.0,
        norm: Norm = "batch",
        minibatch_std: bool = False,
        minibatch_discrimination: int = 0,
        pack: int = 1,
    ) -> None:
        super().__init__()
        if norm not in ("batch", "none", "spectral"):
            raise ValueError(f"norm must be 'batch', 'none' or 'spectral', got {norm!r}")
        self.pack = check_pack(pack, outputs)
        c_in, c_out = (image_shape[0] + (1 if num_classes else 0)) * pack, check_width(width)
        size = _square_size(image_shape, "DCGANDiscriminator")
        self.num_classes, self.outputs, self.size = num_classes, outputs, size
        self.label_map = nn.Embedding(num_classes, size * size) if num_classes else None
        layers: list[nn.Module] = []
        while size > 4:
            layers.append(normed(nn.Conv2d(c_in, c_out, 5, 2, 2, bias=norm != "batch" or not layers), norm))
            if norm == "batch" and layers[:-1]:
                layers.append(nn.BatchNorm2d(c_out))
            layers += [nn.LeakyReLU(0.2), *dropout_layer(dropout)]
            c_in, c_out, size = c_out, c_out * 2, (size + 1) // 2
        flat = c_in * size * size
        batch_features = [MinibatchStd()] if minibatch_std else []
        if minibatch_discrimination:
            batch_features.append(MinibatchDiscrimination(flat + minibatch_std, minibatch_discrimination))
        self.features = nn.Sequential(*layers, nn.Flatten(), *batch_features)
        self.head = normed(nn.Linear(flat + minibatch_std + minibatch_discrimination, outputs), norm)
        dcgan_init(self)

    def check_data(self, data: object) -> None:
        """Refuse training batches that cannot be packed."""
        check_batch_size(data, self.pack)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.label_map is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass class labels")
            x = torch.cat([x, self.label_map(labels).view(-1, 1, self.size, self.size).to(x.dtype)], dim=1)
        out = self.head(self.features(packed(x, self.pack, self.training)))
        return out.squeeze(1) if self.outputs == 1 else out
