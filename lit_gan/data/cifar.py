"""CIFAR-10 from torchvision's ``cifar-10-batches-py`` pickles, optionally a subset of classes."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import torch
import torchvision

from lit_gan.data.base import Split, TorchvisionDataModule

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]


class CIFAR10(TorchvisionDataModule):
    """CIFAR-10 (50k train / 10k test, 3x32x32); the test split serves as val and test.

    ``classes``: keep only these classes (e.g. ``["horse"]``); labels are remapped to 0..k-1 in
    the given order. None keeps all 10.
    """

    native_shape = (3, 32, 32)
    paper_benchmark = True
    subdir = "cifar-10-batches-py"
    files = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
    title = "CIFAR-10"

    identity_args = (*TorchvisionDataModule.identity_args, "classes")

    def __init__(
        self, data_dir: str = "data", classes: list[str] | None = None, download: bool = True, **kwargs: Any
    ) -> None:
        """
        Args:
            classes: class names to keep, e.g. ["horse"] (labels 0..k-1 in this order); None: all 10.
            download: download with torchvision when the files are not found (needs network).
        """
        super().__init__(data_dir=data_dir, download=download, **kwargs)
        names = list(CIFAR10_CLASSES if classes is None else classes)
        unknown = [c for c in names if c not in CIFAR10_CLASSES]
        if unknown or not names or len(set(names)) != len(names):
            raise ValueError(
                f"classes must be distinct CIFAR-10 class names, got {classes!r}"
                + (f" (unknown: {unknown})" if unknown else "")
                + f"; valid names: {', '.join(CIFAR10_CLASSES)}"
            )
        self.classes = classes
        self._num_classes, self.class_names = len(names), names

    def _download(self) -> None:
        torchvision.datasets.CIFAR10(self.data_dir, train=True, download=True)

    def _read(self, names: list[str]) -> Split:
        assert self.found_dir is not None
        images, labels = [], []
        for name in names:
            with open(self.found_dir / name, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch["labels"], dtype=np.int64))
        x, y = torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))
        lookup = torch.full((len(CIFAR10_CLASSES),), -1, dtype=torch.long)
        for new, name in enumerate(self.class_names):
            lookup[CIFAR10_CLASSES.index(name)] = new
        y = lookup[y]
        keep = y >= 0
        return x[keep], y[keep]

    def _load(self) -> tuple[Split, Split, Split]:
        test = self._read(["test_batch"])
        return self._read([f"data_batch_{i}" for i in range(1, 6)]), test, test
