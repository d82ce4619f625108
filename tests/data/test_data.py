"""Tests of lit_gan.data: shapes, value ranges, splits, subsets and the missing-data errors."""

from __future__ import annotations

import lightning
import numpy as np
import pytest
import torch

import lit_gan.data.mnist as mnist_module
from lit_gan.data import CIFAR10, CIFAR10_CLASSES, CelebA, EmbeddedMNIST, FashionMNIST, ImageFolder, MNIST
from lit_gan.data.mnist import IDX_FILES
from tests.data.conftest import all_labels, as_float, save_png, write_mnist_raw


# --------------------------------------------------------------------------- EmbeddedMNIST
def test_embedded_mnist_shape_and_classes_known_before_setup():
    dm = EmbeddedMNIST()
    assert dm.image_shape == (1, 28, 28)
    assert dm.num_classes == 10 and dm.class_names == [str(i) for i in range(10)]
    assert dm.value_range == (-1.0, 1.0)
    assert dm.train_set is None  # nothing loaded yet
    assert EmbeddedMNIST(image_size=32).image_shape == (1, 32, 32)
    assert "EmbeddedMNIST(image_shape=(1, 28, 28)" in str(dm)  # printing does not load the data
    assert dm.train_set is None


def test_embedded_mnist_train_batch_is_float_in_range():
    dm = EmbeddedMNIST(batch_size=128)
    dm.setup("fit")
    raw_images, raw_labels = next(iter(dm.train_dataloader()))
    assert raw_images.dtype == torch.uint8 and raw_images.shape == (128, 1, 28, 28)
    images, labels = as_float(dm, (raw_images, raw_labels))
    assert images.dtype == torch.float32 and images.shape == (128, 1, 28, 28)
    assert labels.dtype == torch.int64 and labels.shape == (128,)
    assert -1.0 <= images.min() < -1 + 1e-5 and 1 - 1e-5 < images.max() <= 1.0  # real digits hit 0 and 255
    assert set(dm.train_set.labels.tolist()) == set(range(10))


def test_embedded_mnist_zero_one_range_and_resize():
    dm = EmbeddedMNIST(value_range=(0, 1), image_size=32, batch_size=64)
    images, _ = as_float(dm, next(iter(dm.train_dataloader())))
    assert images.shape == (64, 1, 32, 32) and dm.image_shape == (1, 32, 32)
    assert 0.0 <= images.min() < 0.01 and 1 - 1e-5 < images.max() <= 1.0


def test_embedded_mnist_split_sizes_and_seeded_split():
    dm = EmbeddedMNIST(batch_size=64)
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (4500, 500, 500)
    assert len(dm.train_dataloader()) == 4500 // 64  # drop_last
    same, other = EmbeddedMNIST(), EmbeddedMNIST(seed=1)
    same.setup(), other.setup()
    assert torch.equal(dm.val_set.images, same.val_set.images)
    assert not torch.equal(dm.val_set.images, other.val_set.images)
    first, second = all_labels(dm.val_dataloader()), all_labels(dm.val_dataloader())
    assert torch.equal(first, second) and torch.equal(first, dm.val_set.labels)  # no shuffling
    assert not torch.equal(all_labels(dm.train_dataloader()), dm.train_set.labels[: 70 * 64])  # shuffled


def test_predict_dataloader_cycles_labels_and_is_not_converted():
    dm = EmbeddedMNIST(batch_size=8, predict_size=25)
    batches = list(dm.predict_dataloader())
    assert [len(b) for b in batches] == [8, 8, 8, 1]
    labels = torch.cat(batches)
    assert labels.dtype == torch.int64 and labels.tolist() == [i % 10 for i in range(25)]
    assert dm.on_after_batch_transfer(batches[0], 0) is batches[0]


def test_worker_processes_get_uint8_batches():
    loader = EmbeddedMNIST(batch_size=32, num_workers=1).train_dataloader()
    assert loader.persistent_workers and loader.drop_last
    images, labels = next(iter(loader))
    assert images.dtype == torch.uint8 and images.shape == (32, 1, 28, 28) and labels.shape == (32,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"value_range": (0.5, 2)}, "value_range must be"),
        ({"value_range": (-1, 1, 0)}, "value_range must be"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"image_size": 2}, "image_size must be an integer >= 4"),
        ({"num_workers": -1}, "num_workers"),
        ({"predict_size": 0}, "predict_size"),
        ({"val_size": 5000}, "val_size"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EmbeddedMNIST(**kwargs)


@pytest.mark.filterwarnings("ignore:.*LeafSpec")
def test_conversion_in_a_lightning_run():
    """With a Trainer, train/val batches reach the model as float and predict batches as labels."""

    class Probe(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)
            self.seen = []

        def training_step(self, batch, batch_idx):
            self.seen.append(batch[0])
            return self.layer(batch[0].mean().view(1, 1)).sum()

        def validation_step(self, batch, batch_idx):
            self.seen.append(batch[0])

        def predict_step(self, batch, batch_idx):
            return batch

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    dm, model = EmbeddedMNIST(batch_size=16, predict_size=12, value_range=(0, 1)), Probe()
    trainer = lightning.Trainer(
        accelerator="cpu", max_epochs=1, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    assert [x.dtype for x in model.seen] == [torch.float32] * 3  # 2 train + 1 val batch
    assert all(0 <= x.min() < x.max() <= 1 for x in model.seen)
    predicted = trainer.predict(model, datamodule=dm)
    assert torch.cat(predicted).tolist() == [i % 10 for i in range(12)]


# --------------------------------------------------------------------------- MNIST / Fashion-MNIST
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


# --------------------------------------------------------------------------- CIFAR-10
def test_cifar10_single_class_subset(cifar_root):
    root, batches = cifar_root
    dm = CIFAR10(data_dir=str(root), classes=["horse"], download=False, batch_size=4)
    assert (dm.num_classes, dm.class_names, dm.image_shape) == (1, ["horse"], (3, 32, 32))
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set)) == (10, 2)  # 2 horses per batch of 20
    assert set(all_labels(dm.train_dataloader()).tolist()) == {0}
    expected = batches["test_batch"][0][batches["test_batch"][1] == CIFAR10_CLASSES.index("horse")]
    assert torch.equal(dm.val_set.images.flatten(1), torch.from_numpy(expected))


def test_cifar10_subset_keeps_given_order_and_all_classes(cifar_root):
    root, _ = cifar_root
    dm = CIFAR10(data_dir=str(root), classes=["truck", "airplane"], download=False, image_size=16)
    dm.setup()
    assert dm.num_classes == 2 and dm.val_set.images.shape == (4, 3, 16, 16)
    assert dm.val_set.labels.tolist() == [1, 0, 1, 0]  # fixture order: airplane (0), ..., truck (9)
    full = CIFAR10(data_dir=str(root), download=False)
    full.setup()
    assert full.num_classes == 10 and len(full.train_set) == 100


def test_cifar10_bad_class_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown: \\['pony'\\]") as info:
        CIFAR10(classes=["horse", "pony"])
    assert all(name in str(info.value) for name in CIFAR10_CLASSES)


# --------------------------------------------------------------------------- ImageFolder
@pytest.mark.parametrize(("in_memory", "num_workers"), [(True, 0), (True, 2), (False, 0)])
def test_image_folder_with_class_subfolders(labeled_folder, in_memory, num_workers):
    dm = ImageFolder(
        root=str(labeled_folder), image_size=8, in_memory=in_memory, val_fraction=0.2, batch_size=4,
        num_workers=num_workers,
    )
    assert (dm.num_classes, dm.class_names, dm.image_shape) == (2, ["a", "b"], (3, 8, 8))
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set)) == (8, 2)
    images, labels = as_float(dm, next(iter(dm.train_dataloader())))
    assert images.shape == (4, 3, 8, 8) and images.dtype == torch.float32 and -1 <= images.min() <= images.max() <= 1
    everything = torch.cat([all_labels(dm.train_dataloader()), all_labels(dm.val_dataloader())])
    assert len(everything) == 10 and set(everything.tolist()) == {0, 1}


def test_image_folder_grayscale_and_flat_folder_is_unlabeled(flat_folder):
    dm = ImageFolder(root=str(flat_folder), image_size=4, channels=1, batch_size=3, predict_size=5)
    assert dm.num_classes == 0 and dm.class_names == [] and dm.image_shape == (1, 4, 4)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (3, 1, 4, 4) and images.dtype == torch.uint8 and labels.tolist() == [0, 0, 0]
    assert torch.cat(list(dm.predict_dataloader())).tolist() == [0] * 5


def test_image_folder_corrupt_image_names_the_file(flat_folder):
    bad = flat_folder / "x.png"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 200, dtype=np.uint8).tobytes())
    dm = ImageFolder(root=str(flat_folder), image_size=8)
    with pytest.raises(ValueError, match=f"cannot read image {bad}: .*remove or fix it"):
        dm.setup("fit")


def test_image_folder_empty_or_missing_folder(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no images .* found in .*empty"):
        ImageFolder(root=str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolder(root=str(tmp_path / "missing"))
    save_png(tmp_path / "one" / "0.png")
    with pytest.raises(ValueError, match="channels must be 1"):
        ImageFolder(root=str(tmp_path / "one"), channels=4)


# --------------------------------------------------------------------------- CelebA
def test_celeba_missing_files_explains_how_to_get_them(tmp_path):
    dm = CelebA(data_dir=str(tmp_path))
    assert dm.image_shape == (3, 64, 64) and dm.num_classes == 0
    with pytest.raises(FileNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert str(tmp_path / "celeba") in message and "img_align_celeba" in message
    assert "list_eval_partition.txt" in message


def test_celeba_reads_official_partition(celeba_root):
    dm = CelebA(data_dir=str(celeba_root), image_size=16, batch_size=2)
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (2, 1, 1)
    raw, labels = next(iter(dm.train_dataloader()))
    assert raw.dtype == torch.uint8 and raw.shape == (2, 3, 16, 16) and labels.tolist() == [0, 0]
    images, _ = as_float(dm, (raw, labels))
    assert images.dtype == torch.float32 and -1 <= images.min() <= images.max() <= 1
