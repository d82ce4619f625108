"""ImageFolder: class subfolders, grey and flat folders, corrupt images, empty folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_gan.data import ImageFolder
from tests.data.conftest import all_labels, as_float, save_png


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
