"""The base data module (exercised with the embedded MNIST): shapes, value ranges, splits,
batches, argument checks, the conversion in a Lightning run, and the cache identity."""

from __future__ import annotations

import lightning
import pytest
import torch

from lit_gan.data import CIFAR10, MNIST, CelebA, EmbeddedMNIST, FashionMNIST, ImageFolder
from tests.data.conftest import all_labels, as_float


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


LOADING_ARGS = {"data_dir", "root", "batch_size", "num_workers", "predict_size", "download", "value_range", "in_memory"}
"""Arguments that change how images are loaded, never which images or how they look."""


@pytest.mark.parametrize(
    "make,args",
    [
        (lambda root: EmbeddedMNIST(), {"image_size": None, "seed": 0, "val_size": 500}),
        (lambda root: MNIST(download=False), {"image_size": None, "seed": 0}),
        (lambda root: FashionMNIST(download=False, image_size=32), {"image_size": 32, "seed": 0}),
        (lambda root: CIFAR10(classes=["horse"], download=False), {"image_size": None, "seed": 0, "classes": ["horse"]}),
        (lambda root: CelebA(), {"image_size": 64, "seed": 0}),
        (lambda root: ImageFolder(root=str(root), channels=1, val_fraction=0.2),
         {"image_size": 64, "seed": 0, "channels": 1, "val_fraction": 0.2}),
    ],
)
def test_each_data_module_declares_what_defines_its_images(make, args, flat_folder):
    data = make(flat_folder)
    identity = data.cache_identity()
    assert identity == {"class": type(data).__name__, "args": args, "image_shape": list(data.image_shape)}
    assert set(data.identity_args) == set(args) and not LOADING_ARGS & set(args)


def test_cache_identity_ignores_loading_details_and_follows_the_images():
    base = EmbeddedMNIST().cache_identity()
    assert EmbeddedMNIST(batch_size=7, num_workers=2, value_range=(0.0, 1.0), data_dir="elsewhere").cache_identity() == base
    assert EmbeddedMNIST(image_size=32).cache_identity() != base and EmbeddedMNIST(seed=1).cache_identity() != base
