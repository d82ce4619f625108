"""CelebA: missing files explained, the official partition read."""

from __future__ import annotations

import pytest
import torch

from lit_gan.data import CelebA
from tests.data.conftest import as_float


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
