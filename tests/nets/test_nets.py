"""The networks: shapes for every image size, depth, channels, and the specs that configs give."""

import pytest
import torch

from lit_gan import nets
from lit_gan.nets import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator

PAIRS = {"mlp": (MLPGenerator, MLPDiscriminator), "dcgan": (DCGANGenerator, DCGANDiscriminator)}
SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 16, 16)]


@pytest.mark.parametrize("arch", sorted(PAIRS))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("classes", [0, 10])
def test_generator_and_discriminator_shapes(arch, shape, classes):
    make_g, make_d = PAIRS[arch]
    g, d = make_g(shape, 16, classes, width=8), make_d(shape, classes, 1, width=8)
    z, labels = torch.randn(3, 16), torch.tensor([0, 1, 9]) if classes else None
    images = g(z, labels)
    assert images.shape == (3, *shape)
    assert images.min() >= -1 and images.max() <= 1 and g.value_range == (-1.0, 1.0)
    assert d(images, labels).shape == (3,)


@pytest.mark.parametrize("arch", sorted(PAIRS))
def test_sigmoid_output_and_multi_output_discriminator(arch):
    make_g, make_d = PAIRS[arch]
    g = make_g((1, 28, 28), 8, 0, width=8, dropout=0.2, final_activation="sigmoid")
    images = g(torch.randn(4, 8))
    assert images.min() >= 0 and images.max() <= 1 and g.value_range == (0.0, 1.0)
    assert make_d((1, 28, 28), 0, 11, width=8, dropout=0.5, norm="none")(images).shape == (4, 11)


def test_dcgan_depth_follows_image_size():
    up = lambda s: sum(isinstance(m, torch.nn.ConvTranspose2d) for m in DCGANGenerator((1, s, s), 8, width=8).modules())  # noqa: E731
    down = lambda s: sum(isinstance(m, torch.nn.Conv2d) for m in DCGANDiscriminator((1, s, s), width=8).modules())  # noqa: E731
    assert [up(s) for s in (28, 32, 64)] == [2, 3, 4]
    assert [down(s) for s in (28, 32, 64)] == [3, 3, 4]  # 64 px: 64-128-256-512 as in the DCGAN paper


def test_dcgan_discriminator_channels_follow_the_paper():
    convs = [m for m in DCGANDiscriminator((3, 64, 64)).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in convs)


@pytest.mark.parametrize("shape", [(1, 27, 27), (1, 6, 6), (3, 32, 28)])
def test_impossible_image_size_is_explained(shape):
    with pytest.raises(ValueError, match="image_size"):
        DCGANGenerator(shape, 8, width=8)


def test_conditional_network_needs_labels():
    with pytest.raises(ValueError, match="labels"):
        MLPGenerator((1, 28, 28), 8, 10, width=8)(torch.randn(2, 8))


def test_spectral_norm_wraps_discriminator_layers_and_bounds_them():
    net = DCGANDiscriminator((1, 28, 28), width=8, norm="spectral")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    net(torch.randn(4, 1, 28, 28))  # power iteration runs in training mode
    w = net.features[0].weight  # the normalised weight has spectral norm ~1
    assert torch.linalg.matrix_norm(w.flatten(1), ord=2).item() == pytest.approx(1.0, rel=0.1)


def test_specs_are_plain_data_and_build_only_torch_modules():
    spec = nets.net(DCGANGenerator, width=8)
    assert spec == {"class_path": "lit_gan.nets.dcgan.DCGANGenerator", "init_args": {"width": 8}}
    assert nets.as_spec(DCGANGenerator) == nets.net(DCGANGenerator) and nets.as_spec(spec) == spec
    g = nets.build(spec, (1, 28, 28), 16, 0)
    assert isinstance(g, DCGANGenerator) and g.project[0].in_features == 16
    with pytest.raises(ValueError, match="not a torch.nn.Module"):
        nets.build({"class_path": "os.system", "init_args": {}}, "echo")
    with pytest.raises(ValueError, match="not found"):
        nets.build({"class_path": "lit_gan.nets.ResNetGenerator", "init_args": {}})
    with pytest.raises(ValueError, match="DCGANGenerator: .*unexpected keyword argument 'depth'"):
        nets.build(nets.net(DCGANGenerator, depth=3), (1, 28, 28), 16, 0)
    with pytest.raises(ValueError, match=r"Linear: .*lit_gan builds a generator as G\(image_shape, latent_dim, num_classes"):
        nets.build({"class_path": "torch.nn.Linear", "init_args": {}}, (1, 28, 28), 16, 0)
