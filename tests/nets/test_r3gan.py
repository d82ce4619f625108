"""R3GAN's networks: shapes at 28, 32 and 64 px, the residual design, fix-up initialisation."""

import math

import pytest
import torch

from lit_gan.nets import R3GANDiscriminator, R3GANGenerator
from lit_gan.nets.r3gan import GAIN, Bottleneck


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32), (1, 64, 64), (3, 64, 64)])
@pytest.mark.parametrize("classes", [0, 10])
def test_shapes_and_value_range(shape, classes):
    g, d = R3GANGenerator(shape, 16, classes, width=8), R3GANDiscriminator(shape, classes, 1, width=8)
    z, labels = torch.randn(3, 16), torch.tensor([0, 1, 9]) if classes else None
    images = g(z, labels)
    assert images.shape == (3, *shape) and g.value_range == (-1.0, 1.0)
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0.01
    assert d(images, labels).shape == (3,)


def test_resolutions_start_at_4_or_7_and_channels_double_as_it_halves():
    for shape, blocks, expected in [
        ((1, 28, 28), 1, [(8, 28), (16, 14), (32, 7)]),
        ((1, 28, 28), [2, 1, 0], [(16, 14), (32, 7), (32, 7)]),  # per resolution from 7 px up: none at 28 px
        ((3, 64, 64), 1, [(8, 64), (16, 32), (32, 16), (64, 8), (64, 4)]),
    ]:
        d = R3GANDiscriminator(shape, width=8, blocks=blocks)
        seen = []
        for b in d.modules():
            if isinstance(b, Bottleneck):
                b.register_forward_hook(lambda m, i, o: seen.append((o.shape[1], o.shape[2])))
        d(torch.randn(2, *shape))
        assert seen == expected  # 64 px: channels capped at 8 x width
        g = R3GANGenerator(shape, 16, width=8, blocks=blocks)
        assert sum(isinstance(m, Bottleneck) for m in g.modules()) == len(expected)
        assert g.basis.shape[1:] == (expected[-1][1],) * 2 and g(torch.randn(2, 16)).shape[-1] == shape[-1]


def test_no_normalization_grouped_bottlenecks_and_bilinear_upsampling():
    g, d = R3GANGenerator((1, 28, 28), 16, width=16, group_size=8), R3GANDiscriminator((1, 28, 28), width=16, group_size=8)
    norms = (torch.nn.BatchNorm2d, torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.InstanceNorm2d)
    assert not any(isinstance(m, norms) or hasattr(m, "parametrizations") for net in (g, d) for m in net.modules())
    for block in [m for net in (g, d) for m in net.modules() if isinstance(m, Bottleneck)]:
        first, grouped, last = block.branch[0], block.branch[2], block.branch[4]
        assert first.kernel_size == last.kernel_size == (1, 1) and grouped.kernel_size == (3, 3)
        assert first.out_channels == 2 * first.in_channels  # expansion 2
        assert grouped.groups == grouped.in_channels // 8  # groups of group_size channels
        assert isinstance(block.branch[1], torch.nn.LeakyReLU) and block.branch[1].negative_slope == 0.2


def test_fixup_initialisation_every_block_starts_as_the_identity_with_scaled_branches():
    blocks = 3
    d = R3GANDiscriminator((1, 28, 28), width=64, blocks=blocks)  # 3 resolutions x 3 blocks = 9 in the net
    for block in [m for m in d.modules() if isinstance(m, Bottleneck)]:
        x = torch.randn(2, block.branch[0].in_channels, 7, 7)
        assert torch.equal(block(x), x)  # the last convolution of each branch is zero
        w = block.branch[0].weight
        expected = GAIN * 9 ** (-1 / 4) / math.sqrt(w[0].numel())  # L^(-1/(2m-2)) with L = 9, m = 3
        assert w.std().item() == pytest.approx(expected, rel=0.1)


def test_conditional_nets_use_the_labels_and_multi_output_d():
    torch.manual_seed(0)
    g, d = R3GANGenerator((1, 28, 28), 16, 10, width=8), R3GANDiscriminator((1, 28, 28), 10, 1, width=8)
    z, x = torch.randn(2, 16), torch.randn(2, 1, 28, 28)
    a, b = torch.tensor([0, 0]), torch.tensor([3, 3])
    assert not torch.allclose(g(z, a), g(z, b)) and not torch.allclose(d(x, a), d(x, b))  # projection term
    with pytest.raises(ValueError, match="labels"):
        d(x)
    assert R3GANDiscriminator((1, 28, 28), 0, 11, width=8)(x).shape == (2, 11)  # ACGAN's class head
    sigmoid = R3GANGenerator((1, 28, 28), 16, width=8, final_activation="sigmoid")
    images = sigmoid(z)
    assert sigmoid.value_range == (0.0, 1.0) and images.min() >= 0 and images.max() <= 1
    linear = R3GANGenerator((1, 28, 28), 16, width=8, final_activation="none")  # the paper's: no output squashing
    linear.load_state_dict(sigmoid.state_dict())
    assert linear.value_range == (-1.0, 1.0) and torch.allclose(torch.sigmoid(linear(z)), images)


@pytest.mark.parametrize(
    "shape,options,message",
    [
        ((1, 27, 27), {}, "image_size"),
        ((3, 32, 28), {}, "square images"),
        ((1, 4, 4), {}, "image_size"),
        ((1, 28, 28), {"width": 12, "group_size": 16}, "group_size 16 must divide width x expansion = 24"),
        ((1, 28, 28), {"blocks": 0}, "blocks must be a positive integer or 3 integers"),
        ((1, 28, 28), {"blocks": [1, 1]}, r"one per resolution from 7 px up to 28 px"),
    ],
)
def test_impossible_settings_are_explained(shape, options, message):
    with pytest.raises(ValueError, match=message):
        R3GANDiscriminator(shape, **options)
