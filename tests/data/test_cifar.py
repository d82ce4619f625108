"""CIFAR-10: single-class subsets, order, bad class names."""

from __future__ import annotations

import pytest
import torch

from lit_gan.data import CIFAR10, CIFAR10_CLASSES
from tests.data.conftest import all_labels


def test_cifar10_single_class_subset(cifar_root):
    root, batches = cifar_root
    dm = CIFAR10(data_dir=str(root), classes=["horse"], download=False, batch_size=4)
    assert (dm.num_classes, dm.class_names, dm.image_shape) == (1, ["horse"], (3, 32, 32))
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set)) == (10, 2)  # 2 horses per batch of 20
    assert set(all_labels(dm.train_dataloader()).tolist()) == {0}
    expected = batches["test_batch"][0][batches["test_batch"][1] == CIFAR10_CLASSES.index("horse")]
    assert torch.equal(dm.val_set.images.flatten(1), torch.from_numpy(expected))


def test_cifar10_subset_keeps_given_order_and_all_classes(cifar_root):
    root, _ = cifar_root
    dm = CIFAR10(data_dir=str(root), classes=["truck", "airplane"], download=False, image_size=16)
    dm.setup()
    assert dm.num_classes == 2 and dm.val_set.images.shape == (4, 3, 16, 16)
    assert dm.val_set.labels.tolist() == [1, 0, 1, 0]  # fixture order: airplane (0), ..., truck (9)
    full = CIFAR10(data_dir=str(root), download=False)
    full.setup()
    assert full.num_classes == 10 and len(full.train_set) == 100


def test_cifar10_bad_class_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown: \\['pony'\\]") as info:
        CIFAR10(classes=["horse", "pony"])
    assert all(name in str(info.value) for name in CIFAR10_CLASSES)
