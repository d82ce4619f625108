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
