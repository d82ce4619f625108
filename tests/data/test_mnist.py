"""MNIST and Fashion-MNIST: idx files, missing files, failed downloads, the Debian package."""

from __future__ import annotations

import pytest
import torch

import lit_gan.data.mnist as mnist_module
from lit_gan.data import FashionMNIST, MNIST
from lit_gan.data.mnist import IDX_FILES
from tests.data.conftest import as_float, write_mnist_raw


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_reads_idx_files(tmp_path, digits, compress):
    write_mnist_raw(tmp_path / "MNIST" / "raw", digits, compress)
    dm = MNIST(data_dir=str(tmp_path), download=False, batch_size=16)
    assert dm.image_shape == (1, 28, 28) and dm.num_classes == 10
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set)) == (48, 16)
    assert torch.equal(dm.train_set.images[:, 0], torch.from_numpy(digits[0][:48]))
    assert torch.equal(dm.val_set.labels, torch.from_numpy(digits[1][48:]).long())
    images, labels = as_float(dm, next(iter(dm.train_dataloader())))
    assert images.shape == (16, 1, 28, 28) and images.dtype == torch.float32 and labels.dtype == torch.int64


def test_mnist_missing_files_without_download(tmp_path):
    dm = MNIST(data_dir=str(tmp_path), download=False)
    with pytest.raises(FileNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "--data.init_args.download true" in message
    assert all(name in message for name in IDX_FILES)


def test_failed_download_becomes_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(MNIST, "torchvision_class", offline)
    with pytest.raises(FileNotFoundError, match="the download failed: RuntimeError.*no network") as info:
        MNIST(data_dir=str(tmp_path), download=True).prepare_data()
    assert "train-labels-idx1-ubyte.gz" in str(info.value)


def test_fashion_mnist_found_in_debian_dir(tmp_path, digits, monkeypatch):
    debian = write_mnist_raw(tmp_path / "debian" / "fashion-mnist", digits)
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_MNIST_DIRS", [str(debian)])
    dm = FashionMNIST(data_dir=str(tmp_path / "empty"), download=False, batch_size=8, image_size=16)
    assert dm.class_names[0] == "T-shirt/top" and dm.image_shape == (1, 16, 16)
    images, _ = as_float(dm, next(iter(dm.train_dataloader())))
    assert dm.found_dir == debian and images.shape == (8, 1, 16, 16)


def test_fashion_mnist_missing_mentions_apt(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_MNIST_DIRS", [str(tmp_path / "nowhere")])
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as info:
        FashionMNIST(data_dir=str(tmp_path), download=False).prepare_data()
    assert str(tmp_path / "nowhere") in str(info.value) and "t10k-labels-idx1-ubyte.gz" in str(info.value)


def test_data_found_elsewhere_than_data_dir_says_where(tmp_path, monkeypatch, caplog, mnist_digits):
    """A Fashion-MNIST taken from Debian's folder, not from --data.init_args.data_dir, is named."""
    import logging

    import lit_gan.data.mnist as mnist_module
    from tests.fixtures import write_mnist_raw

    system = tmp_path / "system"
    write_mnist_raw(system, mnist_digits)
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_MNIST_DIRS", [str(system)])
    data = mnist_module.FashionMNIST(data_dir=str(tmp_path / "nonexistent"), download=False)
    with caplog.at_level(logging.INFO):
        data.setup("fit")
    assert f"Fashion-MNIST: not in {tmp_path / 'nonexistent' / 'FashionMNIST/raw'}; using the copy in {system}" in caplog.text
