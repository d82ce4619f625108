"""Shared test settings: tiny networks and few batches so the suite stays fast on 2 CPU cores."""

import os
import tempfile

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ["LIT_GAN_CACHE"] = tempfile.mkdtemp(prefix="lit_gan_cache_")  # classifiers, real statistics
torch.set_num_threads(1)  # tiny networks: one thread is faster than two

TINY = {"width": 8, "latent_dim": 16}
"""Model arguments that keep every network small in tests."""


@pytest.fixture
def trainer_kwargs(tmp_path):
    return dict(
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        limit_train_batches=4,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


# Datasets in the real on-disk formats, built once per session, and `cli_env` for in-process CLI
# runs (tests/fixtures.py).
from tests.fixtures import (  # noqa: E402, F401
    celeba_data_dir,
    cifar10_data_dir,
    cli_env,
    fashion_mnist_data_dir,
    flat_image_folder,
    labeled_image_folder,
    mnist_data_dir,
    mnist_digits,
)
