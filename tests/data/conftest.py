"""Tiny on-disk fixtures in the real file formats (idx, CIFAR pickles, image folders, CelebA)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_gan.data.cifar import CIFAR10_CLASSES
from lit_gan.data.mnist import IDX_FILES, load_mnist_5k


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """Write a uint8 array in the idx format (magic 0x0000 08 <ndim>, big-endian dims)."""
    payload = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path.write_bytes(gzip.compress(payload))
    else:
        path.with_suffix("").write_bytes(payload)  # drop .gz


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """64 real digits (64, 28, 28) uint8 and their labels: 48 for 'train', 16 for 't10k'."""
    images, labels = load_mnist_5k()
    return images[:64, 0].numpy(), labels[:64].numpy()


def write_mnist_raw(directory: Path, digits: tuple[np.ndarray, np.ndarray], compress: bool = True) -> Path:
    images, labels = digits
    arrays = (images[:48], labels[:48], images[48:], labels[48:])
    for name, array in zip(IDX_FILES, arrays):
        write_idx(directory / name, array, compress)
    return directory


@pytest.fixture
def cifar_root(tmp_path: Path) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``<tmp>/cifar-10-batches-py`` with 5 train batches of 20 and a test batch of 20 random images."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        data = rng.integers(0, 256, size=(20, 3072), dtype=np.uint8)
        labels = [i % 10 for i in range(20)]
        batches[name] = (data, np.array(labels))
        entry = {"batch_label": name, "labels": labels, "data": data, "filenames": [f"{i}.png" for i in range(20)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"num_cases_per_batch": 20, "label_names": CIFAR10_CLASSES, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return tmp_path, batches


def save_png(path: Path, size: tuple[int, int] = (12, 10), seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def labeled_folder(tmp_path: Path) -> Path:
    """root/a/*.png (6 images) and root/b/*.PNG (4 images, upper-case extension), non-square."""
    root = tmp_path / "images"
    for i in range(6):
        save_png(root / "a" / f"{i}.png", seed=i)
    for i in range(4):
        save_png(root / "b" / f"{i}.PNG", seed=10 + i)
    (root / "b" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def flat_folder(tmp_path: Path) -> Path:
    root = tmp_path / "flat"
    for i in range(10):
        save_png(root / f"{i}.png", size=(9, 9), seed=i)
    return root


@pytest.fixture
def celeba_root(tmp_path: Path) -> Path:
    """A 4-image CelebA in torchvision's layout: celeba/img_align_celeba/*.jpg + partition file."""
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    lines = []
    for i, split in enumerate([0, 0, 1, 2], start=1):
        pixels = np.full((218, 178, 3), 40 * i, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg")
        lines.append(f"{i:06d}.jpg {split}")
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def as_float(dm, batch):
    """What the model receives: the batch after the datamodule's on-device conversion."""
    return dm.on_after_batch_transfer(batch, 0)


def all_labels(loader) -> torch.Tensor:
    return torch.cat([labels for _, labels in loader])
