"""DiffAugment: differentiable, shape-preserving, and a clear error for unknown policies."""

import pytest
import torch

from lit_gan.augment import diff_augment, parse_policy


def test_diff_augment_is_differentiable_and_keeps_the_shape():
    y = torch.randn(4, 1, 28, 28, requires_grad=True)
    augmented = diff_augment(y, parse_policy("translation,cutout,color"))
    assert augmented.shape == y.shape and not torch.equal(augmented, y)
    augmented.sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0  # differentiable: G still gets gradients


def test_unknown_policy_is_explained():
    assert parse_policy(" translation , cutout") == ["translation", "cutout"] and parse_policy("") == []
    with pytest.raises(ValueError, match="unknown augmentation"):
        parse_policy("translation,flip")


def test_probability_p_applies_each_op_to_that_fraction_of_samples():
    x = torch.randn(4000, 1, 8, 8)
    assert torch.equal(diff_augment(x, ["cutout"], p=0.0), x)  # ADA's start: nothing changes
    torch.manual_seed(0)
    always = diff_augment(x, ["cutout"])
    torch.manual_seed(0)
    assert torch.equal(diff_augment(x, ["cutout"], p=1.0), always)  # p = 1 is plain DiffAugment
    changed = (diff_augment(x, ["cutout"], p=0.3) != x).flatten(1).any(1).float().mean().item()
    assert changed == pytest.approx(0.3, abs=0.03)
    # two ops drawn independently: a sample escapes both with probability (1 - p)^2
    changed = (diff_augment(x, ["cutout", "color"], p=0.5) != x).flatten(1).any(1).float().mean().item()
    assert changed == pytest.approx(0.75, abs=0.03)


def test_augmentation_with_probability_stays_differentiable():
    y = torch.randn(64, 1, 8, 8, requires_grad=True)
    diff_augment(y, parse_policy("translation,color"), p=0.5).pow(2).sum().backward()
    assert y.grad is not None and (y.grad.flatten(1).abs().sum(1) > 0).all()  # every sample passes gradient, augmented or not
