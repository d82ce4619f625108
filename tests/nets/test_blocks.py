"""Shared network pieces: maxout units and the minibatch standard deviation feature."""

import pytest
import torch

from lit_gan.nets import MLPDiscriminator, MLPGenerator, DCGANDiscriminator
from lit_gan.nets.blocks import Maxout, MinibatchStd


def test_maxout_takes_the_max_of_its_pieces():
    layer = Maxout(3, 2, pieces=4)
    x = torch.randn(5, 3)
    pieces = layer.linear(x).view(5, 2, 4)
    assert torch.equal(layer(x), pieces.max(dim=2).values)
    assert any(isinstance(m, Maxout) for m in MLPGenerator((1, 28, 28), 8, width=8, maxout=2).modules())
    assert any(isinstance(m, Maxout) for m in MLPDiscriminator((1, 28, 28), width=8, maxout=2).modules())


def test_minibatch_std_feature_sees_a_collapsed_batch():
    feature = MinibatchStd()
    varied, collapsed = torch.randn(8, 4), torch.ones(8, 4)
    assert feature(varied).shape == (8, 5)
    assert feature(varied)[0, -1].item() == pytest.approx(varied.std(0, unbiased=False).mean().item(), rel=1e-5)
    assert feature(collapsed)[:, -1].abs().max() == 0
    assert DCGANDiscriminator((1, 28, 28), width=8, minibatch_std=True)(torch.randn(3, 1, 28, 28)).shape == (3,)
