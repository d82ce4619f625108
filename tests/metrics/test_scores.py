"""The metric functions on feature tensors, against values known in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from lit_gan.metrics import scores


def exact_gaussian(n: int, mean: torch.Tensor, var: torch.Tensor, seed: int) -> torch.Tensor:
    """n samples whose *sample* mean is exactly `mean` and sample covariance exactly diag(`var`)
    (whitened with the Cholesky factor of their own covariance), so the closed form applies exactly."""
    z = torch.randn(n, len(mean), dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    z = z - z.mean(0)
    chol = torch.linalg.cholesky(z.T @ z / (n - 1))
    z = torch.linalg.solve_triangular(chol, z.T, upper=False).T
    return mean + z * var.sqrt()


def test_fid_of_a_set_against_itself_is_zero():
    x = torch.randn(400, 32, generator=torch.Generator().manual_seed(0)) * 3 + 1
    stats = scores.fid_statistics(x)
    assert abs(scores.fid(stats, stats)) < 1e-6
    assert scores.fid(stats, scores.fid_statistics(x + 0.5)) == pytest.approx(32 * 0.25, rel=1e-6)


def test_fid_matches_the_closed_form_for_diagonal_gaussians():
    d = 8
    mu1, mu2 = torch.zeros(d, dtype=torch.float64), torch.linspace(-1, 2, d, dtype=torch.float64)
    v1, v2 = torch.linspace(0.5, 2, d, dtype=torch.float64), torch.linspace(3, 1, d, dtype=torch.float64)
    a, b = exact_gaussian(2000, mu1, v1, seed=1), exact_gaussian(3000, mu2, v2, seed=2)
    # ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), by hand for diagonal S1, S2
    expected = float(((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * (v1 * v2).sqrt()).sum())
    assert scores.fid(scores.fid_statistics(a), scores.fid_statistics(b)) == pytest.approx(expected, rel=1e-9)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    real, same, shifted = (torch.randn(600, 16, generator=g) for _ in range(3))
    near, _ = scores.kid(real, same, subsets=20, subset_size=300)
    far, _ = scores.kid(real, shifted + 1.0, subsets=20, subset_size=300)
    assert abs(near) < 0.02 < far and far > 20 * abs(near)


def test_inception_score_of_confident_balanced_and_of_uninformative_predictions():
    confident = torch.eye(10).repeat(40, 1) * 50  # every class equally often, each prediction certain
    assert scores.inception_score(confident, splits=1)[0] == pytest.approx(10, rel=1e-6)
    assert scores.inception_score(torch.zeros(400, 10), splits=4)[0] == pytest.approx(1, abs=1e-9)


def test_precision_recall_density_coverage_of_identical_and_disjoint_sets():
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    assert scores.precision_recall(x, x.clone()) == (1.0, 1.0)
    assert scores.precision_recall(x, x + 100) == (0.0, 0.0)
    density, coverage = scores.density_coverage(x, x.clone())
    assert coverage == 1.0 and 0.8 < density < 1.5
    assert scores.density_coverage(x, x + 100) == (0.0, 0.0)


def test_nearest_neighbours_skip_the_point_itself_when_asked():
    points = torch.tensor([[0.0], [1.0], [3.0]])
    dist, idx = scores.nearest(points, points, 1, exclude_self=True)
    assert dist.flatten().tolist() == [1.0, 1.0, 2.0] and idx.flatten().tolist() == [1, 0, 1]
    assert scores.nearest(points, points, 1)[0].abs().sum() == 0


def test_mode_coverage_counts_classes_above_the_threshold_and_the_kl():
    data = torch.full((10,), 0.1)
    collapsed = scores.mode_coverage(torch.full((1000,), 3), data)
    assert collapsed["classes_covered"] == 1 and collapsed["class_kl"] == pytest.approx(math.log(10))
    balanced = scores.mode_coverage(torch.arange(1000) % 10, data)
    assert balanced["classes_covered"] == 10 and balanced["class_kl"] == pytest.approx(0, abs=1e-12)
    # class 9 gets 9 of 1000 samples: below 10% of its 10% share (10 samples), so not covered
    predicted = torch.cat([torch.arange(991) % 9, torch.full((9,), 9)])
    assert scores.mode_coverage(predicted, data, cover_ratio=0.1)["classes_covered"] == 9
    assert scores.label_accuracy(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 0])) == 0.5
    # classes 1 and 2 always right, class 0 right once in three, class 3 never asked for
    per_class = scores.label_accuracy_per_class(torch.tensor([1, 2, 0, 4, 4]), torch.tensor([1, 2, 0, 0, 0]), 5)
    assert per_class == pytest.approx({0: 1 / 3, 1: 1.0, 2: 1.0})
