"""Shared network pieces: maxout units, the minibatch standard deviation feature, minibatch
discrimination and packing."""

import pytest
import torch

from lit_gan.data import EmbeddedMNIST
from lit_gan.models import GAN
from lit_gan.nets import MLPDiscriminator, MLPGenerator, DCGANDiscriminator
from lit_gan.nets.blocks import Maxout, MinibatchDiscrimination, MinibatchStd


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


# ----- minibatch discrimination (Salimans et al. 2016) ---------------------------------------
def test_minibatch_discrimination_sums_closeness_to_the_other_samples():
    layer = MinibatchDiscrimination(6, kernels=4, kernel_dim=3)
    x = torch.randn(5, 6)
    m = (x @ layer.T).view(5, 4, 3)
    expected = torch.stack([sum(torch.exp(-(m[i] - m[j]).abs().sum(1)) for j in range(5) if j != i) for i in range(5)])
    out = layer(x)
    assert out.shape == (5, 10) and torch.equal(out[:, :6], x)
    assert torch.allclose(out[:, 6:], expected, atol=1e-6)
    collapsed = layer(x[:1].expand(5, -1))[:, 6:]  # identical samples: each is as close as can be to 4 others
    assert torch.allclose(collapsed, torch.full((5, 4), 4.0)) and (out[:, 6:] < 4).all()
    assert layer(x[:1])[0, 6:].abs().max() == 0  # a single sample has no others


@pytest.mark.parametrize("arch", [DCGANDiscriminator, MLPDiscriminator])
def test_minibatch_discrimination_is_a_discriminator_option_that_learns(arch):
    d = arch((3, 28, 28), width=8, minibatch_discrimination=7)
    layers = [m for m in d.modules() if isinstance(m, MinibatchDiscrimination)]
    assert len(layers) == 1 and layers[0].kernels == 7
    x = torch.randn(6, 3, 28, 28)
    d(x).sum().backward()
    assert layers[0].T.grad is not None and layers[0].T.grad.abs().sum() > 0
    d.eval()
    assert d(x[:1]).shape == (1,)  # validation, single samples
    with pytest.raises(ValueError, match="positive integer kernels"):
        arch((3, 28, 28), width=8, minibatch_discrimination=-2)


# ----- packing (PacGAN, Lin et al. 2018) ------------------------------------------------------
@pytest.mark.parametrize("arch", [DCGANDiscriminator, MLPDiscriminator])
def test_a_packed_discriminator_gives_one_logit_per_pack_from_every_sample(arch):
    torch.manual_seed(0)  # 8 ReLU units: some draws leave a pack with no active unit (and no gradient)
    d = arch((3, 28, 28), width=8, pack=3)
    x = torch.randn(12, 3, 28, 28, requires_grad=True)
    out = d(x)
    assert out.shape == (4,)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert (grad.flatten(1).abs().sum(1) > 0).all()  # every packed sample gets a gradient
    d.eval()  # no batch-norm statistics: a pack's logit depends on its own samples only
    (grad,) = torch.autograd.grad(d(x)[1], x)
    per_sample = grad.flatten(1).abs().sum(1)
    assert (per_sample[3:6] > 0).all() and per_sample[:3].sum() == 0 and per_sample[6:].sum() == 0  # pack 1 = samples 3..5
    swapped = x.detach()[[1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]
    assert not torch.allclose(d(swapped)[0], d(x.detach())[0])  # each slot of a pack has its own weights
    assert torch.allclose(d(x.detach()[[3, 4, 5, 0, 1, 2]]), d(x.detach()[:6])[[1, 0]], atol=1e-5)  # packs, not samples, permute


@pytest.mark.parametrize("arch", [DCGANDiscriminator, MLPDiscriminator])
def test_packing_outside_training_fills_the_last_pack_and_training_refuses_remainders(arch):
    d = arch((1, 28, 28), width=8, pack=2).eval()
    x = torch.randn(5, 1, 28, 28)
    assert d(x).shape == (3,) and d(x[:1]).shape == (1,)
    assert torch.allclose(d(x)[2], d(x[[4, 0]])[0], atol=1e-5)  # the last pack: sample 4, then sample 0
    with pytest.raises(ValueError, match="batch of 5 images cannot be packed in groups of pack=2"):
        d.train()(x)


def test_conditional_packing_keeps_each_samples_label():
    d = DCGANDiscriminator((1, 28, 28), num_classes=10, width=8, pack=2).eval()
    x, labels = torch.randn(4, 1, 28, 28), torch.tensor([1, 2, 3, 4])
    assert d(x, labels).shape == (2,)
    changed = d(x, torch.tensor([1, 7, 3, 4]))
    assert not torch.allclose(changed[0], d(x, labels)[0]) and torch.allclose(changed[1], d(x, labels)[1])


def test_packing_refuses_a_class_head_and_batches_it_cannot_pack():
    with pytest.raises(ValueError, match="class head .* needs class logits for every image"):
        DCGANDiscriminator((1, 28, 28), outputs=11, pack=2)
    with pytest.raises(ValueError, match="pack is the number of samples"):
        MLPDiscriminator((1, 28, 28), pack=0)
    model = GAN(discriminator={"class_path": "lit_gan.nets.MLPDiscriminator", "init_args": {"width": 8, "pack": 4}})
    with pytest.raises(ValueError, match=r"packs 4 images \(pack=4\) but batch_size=30 .* e\.g\. 28"):
        model.check_data(EmbeddedMNIST(batch_size=30))
    model.check_data(EmbeddedMNIST(batch_size=32))  # a multiple: accepted


def test_the_loop_trains_a_packed_discriminator_with_minibatch_discrimination(trainer_kwargs):
    """A real fit: D sees half as many logits, validation's last incomplete batch is packed too
    (val batches of 500 % 18), and a batch size the packing cannot split stops before training."""
    import lightning as L

    from lit_gan.models import DCGAN
    from tests.conftest import tiny

    model = tiny(DCGAN, d={"pack": 3, "minibatch_discrimination": 5})
    before = model.discriminator.features[0].weight.detach().clone()
    trainer = L.Trainer(**{**trainer_kwargs, "limit_val_batches": 1.0, "max_epochs": 1, "limit_train_batches": 3})
    trainer.fit(model, datamodule=EmbeddedMNIST(batch_size=18))
    assert not torch.equal(before, model.discriminator.features[0].weight) and model.batches_seen == 3
    assert torch.isfinite(trainer.callback_metrics["val/d_loss"])
    with pytest.raises(ValueError, match="batch_size=16 is not a multiple"):
        L.Trainer(**trainer_kwargs).fit(tiny(DCGAN, d={"pack": 3}), datamodule=EmbeddedMNIST(batch_size=16))
