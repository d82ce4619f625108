"""Fixtures of the metrics tests: EmbeddedMNIST, one tiny auto-trained classifier per session
(1 epoch, in a temporary cache), one torch thread (the networks are small; two threads on a busy
2-core machine are slower)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from lit_gan.data import EmbeddedMNIST
from lit_gan.metrics.classifier import load_or_train

CLASSIFIER_EPOCHS = 1


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mnist() -> EmbeddedMNIST:
    data = EmbeddedMNIST()
    data.setup()
    return data


@pytest.fixture(scope="session")
def trained_cache(tmp_path_factory: pytest.TempPathFactory, mnist: EmbeddedMNIST) -> tuple[Path, dict]:
    """A cache dir holding the auto-trained classifier of EmbeddedMNIST, and its record."""
    root = tmp_path_factory.mktemp("lit_gan_cache")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    _, record = load_or_train(mnist, root, epochs=CLASSIFIER_EPOCHS)
    torch.set_num_threads(threads)
    return root, record


@pytest.fixture
def cache_dir(tmp_path: Path, trained_cache: tuple[Path, dict]) -> Path:
    """A fresh cache dir (no real statistics yet) that already holds the trained classifier."""
    shutil.copytree(trained_cache[0] / "classifiers", tmp_path / "cache" / "classifiers")
    return tmp_path / "cache"
