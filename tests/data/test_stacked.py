"""StackedMNIST: three digits as R, G, B; the 3-digit mode as label; reproducible stacks."""

from __future__ import annotations

import pytest
import torch

from lit_gan.data import EmbeddedMNIST, StackedMNIST
from lit_gan.data.stacked import StackedDigits
from tests.data.conftest import as_float, write_mnist_raw


def stacked(**kwargs) -> StackedMNIST:
    data = StackedMNIST(**{"epoch_size": 600, "val_size": 200, "batch_size": 16, **kwargs})
    data.setup("fit")
    return data


def test_each_channel_is_a_source_digit_and_the_label_its_three_digits():
    data = stacked()
    source = data.source_data()
    assert isinstance(source, EmbeddedMNIST) and data.source_name == "EmbeddedMNIST"
    assert data.image_shape == (3, 28, 28) and data.num_classes == 1000 and data.class_names[42] == "042"
    images, labels = data.train_set.images, data.train_set.labels
    assert images.shape == (600, 3, 28, 28) and images.dtype == torch.uint8
    digits = {bytes(d.numpy()): int(y) for d, y in zip(source.train_set.images[:, 0], source.train_set.labels)}
    for image, label in zip(images[:50], labels[:50]):
        r, g, b = (digits[bytes(channel.numpy())] for channel in image)  # every channel is a training digit
        assert int(label) == 100 * r + 10 * g + b
    assert len(labels.unique()) > 400  # 600 uniform draws of 1,000 modes: about 450 distinct


def test_val_stacks_are_made_of_held_out_digits_only():
    data = stacked()
    held_out = {bytes(d.numpy()) for d in data.source_data().val_set.images[:, 0]}
    train = {bytes(d.numpy()) for d in data.source_data().train_set.images[:, 0]}
    channels = {bytes(c.numpy()) for c in data.val_set.images.flatten(0, 1)}
    assert channels <= held_out and not channels & (train - held_out)
    assert data.test_set is data.val_set and len(data.val_set) == 200


def test_stacks_are_reproducible_from_the_seed():
    a, b, other = stacked(), stacked(), stacked(seed=1)
    assert torch.equal(a.train_set.images, b.train_set.images) and torch.equal(a.val_set.labels, b.val_set.labels)
    assert not torch.equal(a.train_set.labels, other.train_set.labels)
    first = [labels for _, labels in a.train_dataloader()]  # one shuffled epoch, the same each time
    assert all(torch.equal(x, y) for x, y in zip(first, [labels for _, labels in b.train_dataloader()]))
    assert a.cache_identity()["args"] == {"image_size": None, "seed": 0, "source_name": "EmbeddedMNIST",
                                          "epoch_size": 600, "val_size": 200}


def test_batches_are_gathered_at_once_and_converted_on_the_device():
    data = stacked(image_size=32, value_range=(0.0, 1.0))
    assert isinstance(data.train_set, StackedDigits) and data.image_shape == (3, 32, 32)
    images, labels = as_float(data, next(iter(data.train_dataloader())))
    assert images.shape == (16, 3, 32, 32) and images.dtype == torch.float32 and 0 <= images.min() < images.max() <= 1
    one, label = data.train_set[3]
    assert torch.equal(one, data.train_set.images[3]) and label == data.train_set.labels[3]
    assert data.train_set.digits.shape[1:] == (1, 32, 32)  # memory: the digits and index triples, not the stacks


def test_full_mnist_is_the_source_when_its_files_are_there(tmp_path, digits):
    write_mnist_raw(tmp_path / "MNIST" / "raw", digits)
    data = stacked(data_dir=str(tmp_path))
    assert data.source_name == "MNIST" and type(data.source_data()).__name__ == "MNIST"
    assert data.train_set.digits.shape[0] == 48 and data.val_set.digits.shape[0] == 16  # train / t10k
    assert stacked(data_dir=str(tmp_path), source="EmbeddedMNIST").source_name == "EmbeddedMNIST"
    with pytest.raises(FileNotFoundError, match="MNIST data not found"):
        stacked(data_dir=str(tmp_path / "empty"), source="MNIST")


@pytest.mark.parametrize("kwargs, message", [
    ({"source": "CIFAR10"}, "source must be 'auto', 'MNIST' or 'EmbeddedMNIST'"),
    ({"epoch_size": 0}, "epoch_size must be an integer >= 1"),
    ({"mode_samples": 2.5}, "mode_samples must be an integer >= 1"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StackedMNIST(**kwargs)


def test_the_cli_knows_it():
    from lit_gan.cli import available
    from lit_gan.data import ImageDataModule

    assert "StackedMNIST" in available(ImageDataModule)
