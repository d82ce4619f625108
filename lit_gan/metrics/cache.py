"""On-disk cache (classifiers, real statistics) keyed by a hash of what the data is.

The cache lives in ``$LIT_GAN_CACHE`` or ``~/.cache/lit_gan``. A dataset is identified by its
class, the constructor arguments that change the images (each data module declares them in
``identity_args``), its image shape, and a fingerprint of the split's whole content (see
:func:`fingerprint`), so a moved data folder still hits the cache and a changed one does not.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import Dataset

from lit_gan.checkpoint_io import write_atomically
from lit_gan.data.base import stack_dataset

CACHE_ENV = "LIT_GAN_CACHE"
def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """``override``, else ``$LIT_GAN_CACHE``, else ``~/.cache/lit_gan``."""
    return Path(override or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lit_gan").expanduser()


def digest(*parts: Any) -> str:
    """A short stable hash of JSON-able ``parts``."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def dataset_spec(datamodule: Any) -> dict[str, Any]:
    """What a data module's images are (its own `cache_identity()`: class, image-defining
    arguments, image shape)."""
    return datamodule.cache_identity()


def split_dataset(datamodule: Any, split: str) -> Dataset:
    """The data module's ``train``/``val``/``test`` dataset (running ``setup`` if needed)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if getattr(datamodule, f"{split}_set", None) is None:
        datamodule.setup("fit" if split in ("train", "val") else "test")
    dataset = getattr(datamodule, f"{split}_set", None)
    if dataset is None:
        raise ValueError(f"{type(datamodule).__name__} has no {split} split")
    return dataset


def split_tensors(datamodule: Any, split: str, indices: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """uint8 images (N, C, H, W) and int64 labels of a split (or of ``indices`` in it)."""
    dataset = split_dataset(datamodule, split)
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):  # in memory: UInt8Images
        images, labels = dataset.images, dataset.labels
        return (images, labels) if indices is None else (images[indices], labels[indices])
    if indices is not None:
        items = [dataset[int(i)] for i in indices]
        return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])
    return stack_dataset(dataset, getattr(datamodule, "num_workers", 0))


def fingerprint(datamodule: Any, split: str) -> str:
    """Size of the split plus a hash of all of it: every pixel and label of a split held in memory
    (MNIST's 55 MB hash in about 0.1 s), or every file's path below the data folder, size and
    modification time for a split read from files. A moved folder keeps its fingerprint; any
    replaced, added or removed image changes it."""
    dataset = split_dataset(datamodule, split)
    h = hashlib.blake2b(digest_size=8)
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):  # in memory: UInt8Images
        h.update(dataset.images.contiguous().numpy().tobytes())
        h.update(dataset.labels.numpy().tobytes())
    elif hasattr(dataset, "paths") and hasattr(dataset, "labels"):  # files: ImageFiles
        root = os.path.commonpath(dataset.paths) if len(dataset.paths) > 1 else os.path.dirname(dataset.paths[0])
        for path, label in zip(dataset.paths, dataset.labels.tolist()):
            stat = os.stat(path)
            h.update(f"{os.path.relpath(path, root)}|{stat.st_size}|{stat.st_mtime_ns}|{label}\n".encode())
    else:
        images, labels = split_tensors(datamodule, split)
        h.update(images.contiguous().numpy().tobytes() + labels.numpy().tobytes())
    return f"{len(dataset)}-{h.hexdigest()}"  # type: ignore[arg-type]


def save(obj: Any, path: Path) -> Path:
    """Write a cache entry atomically (temporary file beside it, fsync, rename): readers never see
    half a file. NumPy arrays are stored as tensors, so entries load with `weights_only=True`."""
    buffer = io.BytesIO()
    torch.save(_tensors(obj), buffer)
    write_atomically(buffer.getbuffer(), path)
    return path


def load(path: Path) -> Any | None:
    """The cached object at ``path``, or None when absent, unreadable or holding anything but
    tensors and plain data (then it is recomputed, with a warning naming the file; a planted
    file never runs code)."""
    if not path.is_file():
        return None
    try:
        return _arrays(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:  # noqa: BLE001 - a corrupt or unsafe cache entry is recomputed
        rank_zero_warn(f"cache entry {path} is unreadable or holds more than tensors and plain data "
                       f"({type(error).__name__}); it is recomputed and replaced, nothing in it was run")
        return None


def _tensors(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {_NDARRAY: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, dict):
        return {k: _tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tensors(v) for v in obj)
    return obj


def _arrays(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_NDARRAY}:
            return obj[_NDARRAY].numpy()
        return {k: _arrays(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_arrays(v) for v in obj)
    return obj


_NDARRAY = "__ndarray__"
