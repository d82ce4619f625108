"""DiffAugment: differentiable, shape-preserving, and a clear error for unknown policies."""

import pytest
import torch

from lit_gan.augment import diff_augment, parse_policy, translation


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


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """`image` (c, h, w) with out[y, x] = image[y + dy, x + dx], zero outside."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[:, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] = image[:, max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return out


def test_translation_shifts_by_whole_pixels_within_the_ratio_of_each_side():
    torch.manual_seed(0)
    x = torch.arange(1.0, 1 + 2 * 8 * 16).view(1, 2, 8, 16).repeat(300, 1, 1, 1)  # every pixel distinct, non-square
    out = translation(x)  # ratio 1/8: rows by -1..1, columns by -2..2
    seen = set()
    for image, result in zip(x, out):
        matches = [(dy, dx) for dy in range(-1, 2) for dx in range(-2, 3) if torch.equal(result, shifted(image, dy, dx))]
        assert len(matches) == 1, "each sample is its image shifted by one whole-pixel offset in range"
        seen.add(matches[0])
    assert len(seen) == 15  # every offset drawn


def test_translation_is_twice_differentiable_without_grid_sample():
    """R1/R2 differentiate D's gradient through the augmentation. CUDA has no double backward of
    grid_sample ("derivative for aten::grid_sampler_2d_backward is not implemented", seen on an H200),
    so no op of the augmentation may use it."""
    x = torch.randn(4, 1, 8, 8, requires_grad=True)
    weight = torch.randn(1, 1, 8, 8)
    out = diff_augment(x, parse_policy("translation,cutout,color"))
    (grad,) = torch.autograd.grad((out.tanh() * weight).sum(), x, create_graph=True)
    nodes, stack = set(), [grad.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and type(node).__name__ not in nodes:
            nodes.add(type(node).__name__)
            stack.extend(next_fn for next_fn, _ in node.next_functions)
    assert not [n for n in nodes if "GridSampler" in n], sorted(nodes)
    grad.pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
