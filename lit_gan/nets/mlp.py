"""Fully connected networks: seed 001's simple model (one hidden layer of 128 in G and D),
conditioned by concatenating one-hot labels to the input (seed 000's dense cGAN); ReLU or
maxout units (seed 004)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_gan.nets.blocks import (
    Activation,
    MinibatchStd,
    Norm,
    check_shape,
    dropout,
    flat_size,
    hidden_layer,
    normed,
    one_hot,
    output_activation,
)


class MLPGenerator(nn.Module):
    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int = 100,
        num_classes: int = 0,
        width: int = 128,
        dropout_p: float = 0.0,
        final_activation: Activation = "tanh",
        maxout: int = 0,
    ) -> None:
        super().__init__()
        self.image_shape, self.num_classes = check_shape(image_shape), num_classes
        self.net = nn.Sequential(
            *hidden_layer(latent_dim + num_classes, width, maxout),
            *dropout(dropout_p),
            nn.Linear(width, flat_size(self.image_shape)),
            output_activation(final_activation),
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        x = torch.cat([z, one_hot(labels, self.num_classes, z)], dim=1)
        return self.net(x).view(len(z), *self.image_shape)


class MLPDiscriminator(nn.Module):
    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_classes: int = 0,
        width: int = 128,
        dropout_p: float = 0.0,
        norm: Norm = "none",
        outputs: int = 1,
        maxout: int = 0,
        minibatch_std: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes, self.outputs = num_classes, outputs
        self.net = nn.Sequential(
            *hidden_layer(flat_size(check_shape(image_shape)) + num_classes, width, maxout, norm),
            *dropout(dropout_p),
            *([MinibatchStd()] if minibatch_std else []),
            normed(nn.Linear(width + minibatch_std, outputs), norm),
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = x.flatten(1)
        out = self.net(torch.cat([x, one_hot(labels, self.num_classes, x)], dim=1))
        return out.squeeze(1) if self.outputs == 1 else out
