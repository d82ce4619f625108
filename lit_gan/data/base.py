"""Base classes and shared helpers for the lit_gan data modules.

Every data module yields ``(images, labels)`` batches of **uint8** images (N, C, H, W) and int64
labels; :meth:`ImageDataModule.on_after_batch_transfer` turns the images into float32 in
``value_range`` on the device, batched.  ``predict_dataloader`` yields int64 label batches only
(the labels a conditional generator is asked to draw).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import lightning
import torch
from lightning.pytorch.utilities import rank_zero_info
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lit_gan.util import check_int, download_or_raise

Split = tuple[Tensor, Tensor]
"""An in-memory split: uint8 images (N, C, H, W) and int64 labels (N,)."""

VALUE_RANGES: tuple[tuple[float, float], ...] = ((-1.0, 1.0), (0.0, 1.0))


class ImageDataModule(lightning.LightningDataModule):
    """Base data module: argument checks, dataloaders and the batched uint8 -> float conversion.

    Subclasses set ``native_shape`` (C, H, W before resizing), ``_num_classes`` and ``class_names``
    in ``__init__`` (no data loading there) and fill ``train_set``/``val_set``/``test_set`` in
    :meth:`setup`. Datasets must return ``(uint8 image (C, H, W), int label)`` items.

    Args:
        data_dir: folder holding (or receiving) the dataset files.
        batch_size: images per batch (the last incomplete training batch is dropped).
        image_size: resize images to image_size x image_size; None keeps the native size.
        value_range: float range of the images the model sees: (-1, 1) or (0, 1).
        num_workers: DataLoader worker processes (0: load in the main process); None: 0 for data
            held in memory, :func:`default_workers` for images decoded from files.
        predict_size: how many labels ``predict`` asks the generator to draw.
        seed: seed of the train/val split (where the split is random).
    """

    native_shape: tuple[int, int, int] = (1, 28, 28)
    identity_args: tuple[str, ...] = ("image_size", "seed")
    """The arguments that change which images a split holds or how they look: with the class and
    the image shape, they key cached classifiers and real statistics. Subclasses extend it; batch
    size, workers, download, folders and value range are not part of it."""
    paper_benchmark: bool = False
    """Papers report FID on this dataset in Inception features: with Inception weights at hand,
    the evaluation's ``auto`` extractor uses them (and gives the classifier's FID beside)."""

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        image_size: int | None = None,
        value_range: tuple[float, float] = (-1.0, 1.0),
        num_workers: int | None = None,
        predict_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_int("batch_size", batch_size, 1, "e.g. --data.init_args.batch_size 64")
        if image_size is not None:
            check_int("image_size", image_size, 4, "e.g. --data.init_args.image_size 32, or leave it unset")
        if num_workers is not None:
            check_int("num_workers", num_workers, 0, "use 0 to load in the main process, or leave it unset")
        check_int("predict_size", predict_size, 1, "it is the number of samples to generate")
        try:
            vr = (float(value_range[0]), float(value_range[1]))
            ok = len(value_range) == 2 and vr in VALUE_RANGES
        except (TypeError, ValueError, IndexError):
            ok = False
        if not ok:
            raise ValueError(
                f"value_range must be (-1, 1) or (0, 1), got {value_range!r}; "
                "set --data.init_args.value_range to [-1, 1] (tanh generators) or [0, 1] (sigmoid)"
            )
        self.data_dir = str(data_dir)
        self.batch_size = batch_size
        self.image_size = image_size
        self._value_range = vr
        self.num_workers = num_workers
        self.predict_size = predict_size
        self.seed = seed
        self._num_classes = 0
        self.class_names: list[str] = []
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    # ----------------------------------------------------------------- properties
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the batches, after resizing to ``image_size``."""
        c, h, w = self.native_shape
        return (c, h, w) if self.image_size is None else (c, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:
        """Number of label classes; 0 means the data has no labels (labels are all 0)."""
        return self._num_classes

    @property
    def value_range(self) -> tuple[float, float]:
        """(low, high) of the float images the model sees: (-1, 1) or (0, 1)."""
        return self._value_range

    @property
    def transform_description(self) -> str:
        """How the stored images become the batches' images (recorded by ``lit-gan prepare``)."""
        c, h, w = self.native_shape
        if self.image_shape == (c, h, w):
            return f"none: native {c}x{h}x{w}"
        return f"bilinear antialiased resize of {c}x{h}x{w} to {'x'.join(map(str, self.image_shape))}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_shape={self.image_shape}, num_classes={self.num_classes}, "
            f"value_range={self.value_range}, batch_size={self.batch_size})"
        )

    __str__ = __repr__  # Lightning's __str__ would build the dataloaders (and load the data)

    def cache_identity(self) -> dict[str, Any]:
        """What these images are, for cache keys: class, `identity_args` values and image shape."""
        return {"class": type(self).__name__, "args": {k: getattr(self, k) for k in self.identity_args},
                "image_shape": list(self.image_shape)}

    # ----------------------------------------------------------------- conversion
    def to_value_range(self, images: Tensor) -> Tensor:
        """uint8 images in 0..255 -> float32 in ``value_range`` (batched, on the images' device)."""
        low, high = self._value_range
        return images.float().mul_((high - low) / 255.0).add_(low)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Convert uint8 ``(images, labels)`` batches to floats in the precision's input dtype
        (bf16 under ``bf16-true``, float64 under ``64-true``, else float32); leave predict batches
        (a label tensor) alone."""
        if isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[0], Tensor):
            images, labels = batch
            if images.dtype == torch.uint8:
                images = self.to_value_range(images)
                trainer = self.trainer
                return (trainer.precision_plugin.convert_input(images) if trainer is not None else images), labels
        return batch

    # ----------------------------------------------------------------- loaders
    def _loader(self, split: str) -> DataLoader:
        if getattr(self, f"{split}_set") is None:
            self.setup("fit" if split in ("train", "val") else split)
        dataset: Dataset = getattr(self, f"{split}_set")
        train = split == "train"
        if train and len(dataset) < self.batch_size:  # type: ignore[arg-type]
            raise ValueError(
                f"the training set has {len(dataset)} images, fewer than batch_size={self.batch_size} "  # type: ignore[arg-type]
                "(the last incomplete batch is dropped); lower --data.init_args.batch_size"
            )
        extra = {"progress": self._batches_trained} if train else {}
        workers = self.workers_for(dataset)
        return (ResumableLoader if train else DataLoader)(
            dataset,
            **extra,
            batch_size=self.batch_size,
            sampler=EpochShuffle(len(dataset), self.seed) if train else None,  # type: ignore[arg-type]
            drop_last=train,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            collate_fn=_collate_pair if isinstance(dataset, UInt8Images) else None,
        )

    def workers_for(self, dataset: Dataset) -> int:
        """``num_workers``, or when unset: 0 for data in memory (or memory-mapped), else :func:`default_workers`."""
        if self.num_workers is not None:
            return self.num_workers
        return 0 if isinstance(dataset, UInt8Images) else default_workers()

    def _batches_trained(self) -> int:
        """Batches trained on in the current epoch (Lightning's count of completed batches)."""
        trainer = getattr(self, "trainer", None)
        return int(trainer.fit_loop.epoch_loop.batch_progress.current.completed) if trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_labels(self) -> Tensor:
        """The ``predict_size`` labels to generate: 0..num_classes-1 cycling (zeros if unlabeled)."""
        labels = torch.arange(self.predict_size, dtype=torch.long)
        return labels % self.num_classes if self.num_classes else torch.zeros_like(labels)

    def predict_dataloader(self) -> DataLoader:
        """Batches (int64, up to ``batch_size``) of the labels from :meth:`predict_labels`."""
        return DataLoader(self.predict_labels(), batch_size=self.batch_size, shuffle=False)  # type: ignore[arg-type]


class TensorImageDataModule(ImageDataModule):
    """Base for small datasets held in memory as uint8 tensors, resized once at setup.

    Subclasses implement :meth:`_load` (returning full-resolution uint8 splits) and may override
    :meth:`_locate` (find or download the files, raising a clear ``FileNotFoundError``).
    """

    def _locate(self) -> None:
        """Make sure the files are there (download if allowed); called by prepare_data and setup."""

    def _load(self) -> tuple[Split, Split, Split]:
        """Return (train, val, test) splits; val and test may be the very same tuple."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        self._locate()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self._locate()
        train, val, test = self._load()
        self.train_set = UInt8Images(*self._resize_split(train))
        self.val_set = UInt8Images(*self._resize_split(val))
        self.test_set = self.val_set if test is val else UInt8Images(*self._resize_split(test))

    def _resize_split(self, split: Split) -> Split:
        images, labels = split
        if self.image_size is not None:
            images = resize_uint8(images, self.image_size)
        return images.contiguous(), labels.long()


class TorchvisionDataModule(TensorImageDataModule):
    """Shared logic for torchvision-layout datasets held in memory (MNIST, Fashion-MNIST, CIFAR-10).

    Subclasses set ``subdir`` (relative to ``data_dir``), ``files`` (the names expected there),
    ``title`` and :meth:`_download`, and implement :meth:`_load` reading from ``self.found_dir``.
    Files are looked for *before* torchvision is called; torchvision is only used to download.
    """

    subdir: str = ""
    files: tuple[str, ...] = ()
    title: str = ""

    def __init__(self, data_dir: str = "data", download: bool = True, **kwargs: Any) -> None:
        """
        Args:
            download: fetch the files with torchvision when they are not found (needs network).
        """
        super().__init__(data_dir=data_dir, **kwargs)
        self.download = download
        self.found_dir: Path | None = None

    def _search_dirs(self) -> list[Path]:
        return [Path(self.data_dir) / self.subdir]

    def _file(self, directory: Path, name: str) -> Path | None:
        """The path of ``name`` in ``directory``, or None when absent."""
        path = directory / name
        return path if path.is_file() else None

    def _find(self) -> Path | None:
        for directory in self._search_dirs():
            if all(self._file(directory, name) for name in self.files):
                return directory
        return None

    def _how_to_get(self) -> str:
        return (
            f"run with `--data.init_args.download true` (needs network access), or copy the files "
            f"into {self._search_dirs()[0]}"
        )

    def _download(self) -> None:
        raise NotImplementedError

    def _locate(self) -> None:
        self.found_dir = self._find()
        if self.found_dir is not None:
            if self.found_dir != self._search_dirs()[0]:  # not where data_dir points: say where it came from
                rank_zero_info(f"{self.title}: not in {self._search_dirs()[0]}; using the copy in {self.found_dir}")
            return
        dirs = " or ".join(str(d) for d in self._search_dirs())
        error = missing_data_error(self.title, dirs, self.files, self._how_to_get())
        if not self.download:
            raise error
        download_or_raise(self._download, error)
        self.found_dir = self._find()
        if self.found_dir is None:
            raise error


# ------------------------------------------------------------------------- datasets
class EpochShuffle(torch.utils.data.Sampler[int]):
    """A random order that depends only on (seed, epoch): a resumed run sees the same batches.
    Lightning calls `set_epoch` every epoch (and swaps in a DistributedSampler under DDP).
    `resume` = (epoch, k): the next pass, if it is that epoch's, skips its first k indices (a
    resume in mid-epoch). It is checked when the pass starts, after Lightning's `set_epoch`."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0
        self.resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        resume, self.resume = self.resume, None
        start = resume[1] if resume is not None and resume[0] == self.epoch else 0
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        return iter(order[start:].tolist())

    def __len__(self) -> int:
        return self.n


class ResumableLoader(DataLoader):
    """The training DataLoader, with its place in the epoch saved in checkpoints (Lightning calls
    `state_dict` / `load_state_dict`): a run resumed in mid-epoch goes on with the first batch it
    had not trained on (under DDP, each rank skips its own share's first batches). `progress()` is
    the number of batches trained on in this epoch."""

    def __init__(self, *args: Any, progress: Callable[[], int] = lambda: 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress
        self._resume: dict[str, int] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(getattr(self.sampler, "epoch", 0)), "batches": int(self.progress())}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = dict(state)

    def __iter__(self):  # type: ignore[override]
        resume, self._resume = self._resume, None
        if resume and isinstance(self.sampler, EpochShuffle):
            self.sampler.resume = (resume["epoch"], resume["batches"] * int(self.batch_size or 1))
            return super().__iter__()
        batches = super().__iter__()
        if resume and resume["epoch"] == int(getattr(self.sampler, "epoch", 0)):
            for _ in range(resume["batches"]):  # DDP's share of the order: pass over the batches trained on
                next(batches, None)
        return batches


class UInt8Images(Dataset):
    """uint8 images (N, C, H, W) + int64 labels (N,), fetched a whole batch at a time."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError(f"expected uint8 (N,C,H,W) images and N labels, got {images.shape} {images.dtype}")
        self.images, self.labels = images, labels.long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images[idx], self.labels[idx]


def _collate_pair(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Collate for :class:`UInt8Images`: ``__getitems__`` already returns the stacked batch."""
    return batch


class ImageFiles(Dataset):
    """Image files read lazily with PIL and turned into uint8 (C, H, W) tensors by ``transform``."""

    def __init__(
        self, paths: Sequence[str | Path], labels: Sequence[int] | Tensor, mode: str,
        transform: Callable[[Image.Image], Tensor],
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.mode, self.transform = mode, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = self.transform(read_image(self.paths[index], self.mode))
        return image, self.labels[index]


def read_image(path: str | Path, mode: str) -> Image.Image:
    """Open and decode an image in PIL ``mode``; a clear ``ValueError`` names a bad file.

    8-bit images go straight to PIL's conversion. 16-bit ones (greyscale "I;16*", 32-bit integer
    "I" holding 0..65535, 48/64-bit RGB(A) PNGs) are first rescaled by :func:`_eight_bit`, 0..65535
    to 0..255 rounded; "F" (float) images and "I" ones beyond 0..65535 are refused.
    """
    try:
        with Image.open(path) as image:
            eight_bit = _eight_bit(image, path)
            if not isinstance(eight_bit, str):
                return eight_bit.convert(mode)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image {path}: {err}; remove or fix it") from err
    raise ValueError(f"cannot read image {path}: {eight_bit}; convert it to an 8- or 16-bit image")


def _eight_bit(image: Image.Image, path: str | Path) -> Image.Image | str:
    """``image`` with 8-bit channels, or why it cannot be given them (for :func:`read_image`).

    PIL's ``convert`` clips 16-bit greyscale to 255 and reduces 16-bit RGB(A) PNGs to their high
    bytes; here 16-bit values v become round(v * 255 / 65535) = (v + 128) // 257. A 16-bit RGB(A)
    or grey+alpha PNG (which PIL opens as "RGB"/"RGBA", losing the low bytes) is decoded twice
    from ``path`` with rawmodes of the same width (the PNG unfiltering is the same) to get both
    bytes. Any other image is returned as it is (a 48-bit TIFF keeps PIL's high-byte reduction).
    """
    import numpy as np

    def rescale(values: np.ndarray) -> Image.Image:
        return Image.fromarray(((values.astype(np.uint32) + 128) // 257).astype(np.uint8))

    if image.mode == "F":
        return "32-bit float pixels (mode F) have no known range to map to 0..255"
    if image.mode == "I" or image.mode.startswith("I;"):
        values = np.asarray(image)
        if not (values.dtype.kind == "u" and values.dtype.itemsize <= 2) and values.size:
            low, high = int(values.min()), int(values.max())
            if low < 0 or high > 65535:
                return f"32-bit integer pixels (mode {image.mode}) span {low}..{high}, beyond 16-bit 0..65535"
        return rescale(values)
    rawmode = image.tile[0][3] if image.format == "PNG" and len(image.tile) == 1 else None
    if rawmode == "LA;16B" and image.mode == "RGBA":  # grey+alpha, decoded as bytes L hi, L lo, A hi, A lo
        image.tile = [image.tile[0][:3] + ("RGBA",)]
        both = np.asarray(image).astype(np.uint16)
        return rescale(both[..., 0::2] * 256 + both[..., 1::2])
    low_rawmode = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}.get(rawmode)
    if low_rawmode is None or image.mode != rawmode[:-4]:
        return image
    high = np.asarray(image).astype(np.uint16)
    with Image.open(path) as low:
        low.tile = [low.tile[0][:3] + (low_rawmode,)]
        return rescale(high * 256 + np.asarray(low))


def stack_dataset(dataset: Dataset, num_workers: int | None = None) -> Split:
    """Load a whole (file) dataset into memory as one uint8 split, using ``num_workers`` threads.

    Threads (PIL and torch release the GIL) keep a bad file's ``ValueError`` readable.
    """
    threads = default_workers() if num_workers is None else max(1, num_workers)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        items = list(pool.map(dataset.__getitem__, range(len(dataset))))  # type: ignore[arg-type]
    images, labels = zip(*items)
    return torch.stack(images), torch.stack(labels)


# ------------------------------------------------------------------------- helpers
def default_workers() -> int:
    """Loader workers for images decoded from files: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def resize_uint8(images: Tensor, size: int, chunk: int = 2048) -> Tensor:
    """Resize uint8 (N, C, H, W) to (N, C, size, size): bilinear with antialias, in chunks."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((*images.shape[:2], size, size), dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].float()
        part = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


def missing_data_error(name: str, directory: str | Path, files: Sequence[str], how: str) -> FileNotFoundError:
    """The standard 'data not found' error: where we looked, what we expected, how to get it."""
    return FileNotFoundError(
        f"{name} data not found: looked in {directory} for {', '.join(files)}. To get it: {how}"
    )


def seeded_permutation(n: int, seed: int) -> Tensor:
    """A deterministic permutation of range(n) for the given seed."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))
