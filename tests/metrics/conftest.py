"""Fixtures of the metrics tests: EmbeddedMNIST, one small classifier per session trained
automatically by the Evaluation callback inside `trainer.validate` (2 epochs, in a temporary
cache), one torch and one BLAS thread (the networks are small; two threads on a busy 2-core
machine are much slower); `evaluation()`, the callback with small sample counts (also used by
tests/callbacks)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from threadpoolctl import threadpool_limits

from lit_gan.callbacks import Evaluation
from lit_gan.data import EmbeddedMNIST
from lit_gan.metrics import Settings
from lit_gan.metrics.classifier import load_or_train
from tests.metrics.fakes import RealDigits

CLASSIFIER_EPOCHS = 2
N = 500
"""Generated samples of an `evaluation()`."""


def evaluation(cache_dir: Path, **kwargs: Any) -> Evaluation:
    """The callback with small sample counts; `kwargs` go to Evaluation or, if they are Settings', there."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    settings = {"num_fake": N, "num_real": None, "cache_dir": str(cache_dir), "kid_subsets": 20,
                **{k: v for k, v in kwargs.items() if k in fields}}
    rest = {k: v for k, v in kwargs.items() if k not in fields}
    return Evaluation(**{"classifier_epochs": CLASSIFIER_EPOCHS, **rest}, settings=Settings(**settings))


def same(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics without the timing."""
    return {k: v for k, v in metrics.items() if k != "eval_seconds"}


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread and one BLAS thread for numpy (torch-fidelity's FID/KID run in numpy: on a
    busy 2-core machine OpenBLAS's second thread makes a 128x128 eigvals 0.8 s instead of 3 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mnist() -> EmbeddedMNIST:
    data = EmbeddedMNIST()
    data.setup()
    return data


@pytest.fixture(scope="session")
def trained_cache(tmp_path_factory: pytest.TempPathFactory, mnist: EmbeddedMNIST) -> tuple[Path, dict]:
    """A cache dir holding the classifier of EmbeddedMNIST, trained on first use inside a
    validation loop (inference mode), and its record."""
    root = tmp_path_factory.mktemp("lit_gan_cache")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    limits = threadpool_limits(limits=1, user_api="blas")
    callback = Evaluation(classifier_epochs=CLASSIFIER_EPOCHS,
                          settings=Settings(num_fake=100, num_real=500, kid_subsets=2, cache_dir=str(root)))
    trainer = L.Trainer(default_root_dir=root / "run", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=1, callbacks=[callback])
    trainer.validate(RealDigits(mnist.val_set.images, mnist.val_set.labels), datamodule=mnist)
    _, record = load_or_train(mnist, root, epochs=CLASSIFIER_EPOCHS)  # from the cache
    assert callback.last.protocol["classifier_accuracy"] == record["test_accuracy"]
    torch.set_num_threads(threads)
    limits.restore_original_limits()
    return root, record


@pytest.fixture
def cache_dir(tmp_path: Path, trained_cache: tuple[Path, dict]) -> Path:
    """A fresh cache dir (no real statistics yet) that already holds the trained classifier."""
    shutil.copytree(trained_cache[0] / "classifiers", tmp_path / "cache" / "classifiers")
    return tmp_path / "cache"
