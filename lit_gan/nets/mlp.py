"""Fully connected networks (Goodfellow et al. 2014): one hidden layer in G and D, conditioned by
concatenating one-hot labels to the input (Mirza & Osindero 2014); ReLU or maxout units."""

from __future__ import annotations

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
    dropout_layer,
    flat_size,
    hidden_layer,
    normed,
    one_hot,
    output_activation,
    packed,
)


class MLPGenerator(nn.Module):
    """z (and one-hot labels) -> `width` hidden units -> image.

    Args:
        width: hidden units.
        dropout: dropout after the hidden layer.
        final_activation: "tanh" for data in [-1, 1], "sigmoid" for [0, 1].
        maxout: pieces per maxout unit (0: ReLU units).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int,
        num_classes: int = 0,
        width: int = 128,
        dropout: float = 0.0,
        final_activation: Activation = "tanh",
        maxout: int = 0,
    ) -> None:
        super().__init__()
        self.image_shape, self.num_classes = check_shape(image_shape), num_classes
        self.value_range = VALUE_RANGES.get(final_activation, (-1.0, 1.0))
        self.net = nn.Sequential(
            *hidden_layer(latent_dim + num_classes, check_width(width), maxout),
            *dropout_layer(dropout),
            nn.Linear(width, flat_size(self.image_shape)),
            output_activation(final_activation),
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        x = torch.cat([z, one_hot(labels, self.num_classes, z)], dim=1)
        return self.net(x).view(len(z), *self.image_shape)


class MLPDiscriminator(nn.Module):
    """Image (and one-hot labels) -> `width` hidden units -> `outputs` logits.

    Args:
        width: hidden units.
        dropout: dropout after the hidden layer.
        norm: "none" or "spectral" (spectral normalisation of the weights).
        minibatch_std: append the batch's feature standard deviation before the head.
        maxout: pieces per maxout unit (0: ReLU units).
        minibatch_discrimination: kernels of a minibatch discrimination layer (Salimans et al.
            2016) before the head, e.g. 100 (0: none).
        pack: judge this many samples together, concatenated (PacGAN, Lin et al. 2018): one
            logit per pack; batch sizes must be multiples of it (1: no packing).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_classes: int = 0,
        outputs: int = 1,
        width: int = 128,
        dropout: float = 0.0,
        norm: Norm = "none",
        minibatch_std: bool = False,
        maxout: int = 0,
        minibatch_discrimination: int = 0,
        pack: int = 1,
    ) -> None:
        super().__init__()
        if norm == "batch":
            raise ValueError("the fully connected discriminator has no batch norm: use norm 'none' or 'spectral'")
        self.num_classes, self.outputs, self.pack = num_classes, outputs, check_pack(pack, outputs)
        inputs = (flat_size(check_shape(image_shape)) + num_classes) * pack
        self.net = nn.Sequential(
            *hidden_layer(inputs, check_width(width), maxout, norm),
            *dropout_layer(dropout),
            *([MinibatchStd()] if minibatch_std else []),
            *([MinibatchDiscrimination(width + minibatch_std, minibatch_discrimination)] if minibatch_discrimination else []),
            normed(nn.Linear(width + minibatch_std + minibatch_discrimination, outputs), norm),
        )

    def check_data(self, data: object) -> None:
        """Refuse training batches that cannot be packed."""
        check_batch_size(data, self.pack)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = x.flatten(1)
        out = self.net(packed(torch.cat([x, one_hot(labels, self.num_classes, x)], dim=1), self.pack, self.training))
        return out.squeeze(1) if self.outputs == 1 else out
