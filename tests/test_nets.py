import pytest
import torch

from lit_gan.nets import ARCHITECTURES

SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 16, 16)]


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("classes", [0, 10])
def test_generator_and_discriminator_shapes(arch, shape, classes):
    make_g, make_d = ARCHITECTURES[arch]
    g = make_g(shape, 16, classes, 8, 0.0, "tanh")
    d = make_d(shape, classes, 8, 0.0, "batch" if arch == "dcgan" else "none", 1)
    z, labels = torch.randn(3, 16), torch.tensor([0, 1, 9]) if classes else None
    images = g(z, labels)
    assert images.shape == (3, *shape)
    assert images.min() >= -1 and images.max() <= 1
    assert d(images, labels).shape == (3,)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_sigmoid_output_and_multi_output_discriminator(arch):
    make_g, make_d = ARCHITECTURES[arch]
    images = make_g((1, 28, 28), 8, 0, 8, 0.2, "sigmoid")(torch.randn(4, 8))
    assert images.min() >= 0 and images.max() <= 1
    assert make_d((1, 28, 28), 0, 8, 0.5, "none", 11)(images).shape == (4, 11)


def test_dcgan_depth_follows_image_size():
    g, d = ARCHITECTURES["dcgan"]
    up = lambda s: sum(isinstance(m, torch.nn.ConvTranspose2d) for m in g((1, s, s), 8, 0, 8).modules())
    down = lambda s: sum(isinstance(m, torch.nn.Conv2d) for m in d((1, s, s), 0, 8).modules())
    assert [up(s) for s in (28, 32, 64)] == [2, 3, 4]
    assert [down(s) for s in (28, 32, 64)] == [3, 3, 4]  # 64 px: 64-128-256-512 as in seed 001


def test_dcgan_discriminator_channels_follow_seed_001():
    _, d = ARCHITECTURES["dcgan"]
    convs = [m for m in d((3, 64, 64), 0, 64).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in convs)


@pytest.mark.parametrize("shape", [(1, 27, 27), (1, 6, 6), (3, 32, 28)])
def test_impossible_image_size_is_explained(shape):
    g, _ = ARCHITECTURES["dcgan"]
    with pytest.raises(ValueError, match="image_size"):
        g(shape, 8, 0, 8)


def test_conditional_network_needs_labels():
    g, _ = ARCHITECTURES["mlp"]
    with pytest.raises(ValueError, match="labels"):
        g((1, 28, 28), 8, 10, 8)(torch.randn(2, 8))


def test_spectral_norm_wraps_discriminator_layers():
    _, d = ARCHITECTURES["dcgan"]
    net = d((1, 28, 28), 0, 8, 0.0, "spectral")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert any(hasattr(m, "parametrizations") for m in net.modules())
