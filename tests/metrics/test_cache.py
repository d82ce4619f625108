"""The cache's dataset fingerprint follows every image, not a sample of them."""

import os
import shutil

import pytest

from lit_gan.data import ImageFolder
from lit_gan.metrics import cache
from tests.fixtures import save_png


def folder(root, n=40, seed=0):
    for i in range(n):
        save_png(root / "a" / f"{i}.png", size=(8, 8), seed=seed + i)
    return root


@pytest.mark.parametrize("in_memory", [True, False])
def test_replacing_most_images_of_a_folder_changes_the_fingerprint_and_moving_it_does_not(tmp_path, in_memory):
    def fp(root):
        return cache.fingerprint(ImageFolder(root=str(root), image_size=8, in_memory=in_memory, val_fraction=0.0), "train")

    root = folder(tmp_path / "data")
    before = fp(root)
    assert fp(root) == before
    shutil.copytree(root, tmp_path / "moved", copy_function=shutil.copy2)  # copy2 keeps modification times
    assert fp(tmp_path / "moved") == before
    for i in range(40):  # each single replaced image is seen (a 16-image sample missed most of them)
        save_png(root / "a" / f"{i}.png", size=(8, 8), seed=100 + i)
        os.utime(root / "a" / f"{i}.png", ns=(1, 1 + i))
        assert fp(root) != before, i
        before = fp(root)
