"""Tiny on-disk fixtures in the real file formats (idx, CIFAR pickles, image folders, CelebA).

The writers live in tests/fixtures.py (shared with the CLI and config tests); they are re-exported
here so `from tests.data.conftest import save_png, write_mnist_raw` keeps working.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.fixtures import (  # noqa: F401  (re-exported for the data tests)
    real_digits,
    save_png,
    write_celeba,
    write_cifar10,
    write_flat_folder,
    write_idx,
    write_labeled_folder,
    write_mnist_raw,
)


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """64 real digits (64, 28, 28) uint8 and their labels: 48 for 'train', 16 for 't10k'."""
    return real_digits(64)


@pytest.fixture
def cifar_root(tmp_path: Path) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``<tmp>/cifar-10-batches-py`` with 5 train batches of 20 and a test batch of 20 random images."""
    return tmp_path, write_cifar10(tmp_path, per_batch=20)


@pytest.fixture
def labeled_folder(tmp_path: Path) -> Path:
    """root/a/*.png (6 images) and root/b/*.PNG (4 images, upper-case extension), non-square."""
    return write_labeled_folder(tmp_path / "images")


@pytest.fixture
def flat_folder(tmp_path: Path) -> Path:
    return write_flat_folder(tmp_path / "flat", n=10, size=(9, 9))


@pytest.fixture
def celeba_root(tmp_path: Path) -> Path:
    """A 4-image CelebA in torchvision's layout: celeba/img_align_celeba/*.jpg + partition file."""
    return write_celeba(tmp_path, [0, 0, 1, 2], textured=False)


def as_float(dm, batch):
    """What the model receives: the batch after the datamodule's on-device conversion."""
    return dm.on_after_batch_transfer(batch, 0)


def all_labels(loader) -> torch.Tensor:
    return torch.cat([labels for _, labels in loader])
