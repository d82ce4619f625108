"""CelebA aligned faces (unlabeled), read lazily from ``<data_dir>/celeba`` (torchvision layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torchvision
from torchvision.transforms import v2

from lit_gan.data.base import ImageDataModule, ImageFiles, missing_data_error
from lit_gan.util import download_or_raise

CELEBA_FILES = ("img_align_celeba/", "list_eval_partition.txt")
SPLITS = {"train": 0, "val": 1, "test": 2}


class CelebA(ImageDataModule):
    """CelebA ``img_align_celeba`` (202,599 faces 178x218), center-cropped to 178 and resized.

    Only the image folder and ``list_eval_partition.txt`` are needed (official train/valid/test
    split). torchvision's CelebA class is used only for ``download=True``; it needs every
    annotation file with the right checksum, and Google Drive downloads are often refused.
    """

    native_shape = (3, 178, 178)
    paper_benchmark = True

    def __init__(self, data_dir: str = "data", image_size: int = 64, download: bool = False, **kwargs: Any) -> None:
        """
        Args:
            image_size: faces are center-cropped to 178x178, then resized to this size.
            download: try torchvision's Google Drive download when the files are not found.
        """
        super().__init__(data_dir=data_dir, image_size=image_size, **kwargs)
        self.download = download

    @property
    def transform_description(self) -> str:
        size = self.image_shape[1]
        return f"center-crop 178x178, resize to {size}x{size} (antialiased)"

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / "celeba"

    def _present(self) -> bool:
        return (self.root / "img_align_celeba").is_dir() and (self.root / "list_eval_partition.txt").is_file()

    def _locate(self) -> None:
        if self._present():
            return
        error = missing_data_error(
            "CelebA", self.root, CELEBA_FILES,
            "download img_align_celeba.zip and list_eval_partition.txt (plus list_attr_celeba.txt, "
            "identity_CelebA.txt, list_bbox_celeba.txt, list_landmarks_align_celeba.txt if you like) "
            "from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive / Baidu links), "
            f"unzip so that {self.root}/img_align_celeba/000001.jpg exists and put the .txt files in "
            f"{self.root}/; `--data.init_args.download true` tries torchvision's Google Drive download "
            "(often rate-limited)",
        )
        if not self.download:
            raise error
        download_or_raise(
            lambda: torchvision.datasets.CelebA(self.data_dir, split="all", target_type=[], download=True), error
        )
        if not self._present():
            raise error

    def prepare_data(self) -> None:
        self._locate()

    def _read_partition(self) -> dict[int, list[str]]:
        path = self.root / "list_eval_partition.txt"
        names: dict[int, list[str]] = {0: [], 1: [], 2: []}
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{path}:{number}: expected '<image name> <0|1|2>', got {line!r}")
            names[int(parts[1])].append(parts[0])
        first = next((n for split in names.values() for n in split), None)
        if first is None or not (self.root / "img_align_celeba" / first).is_file():
            raise FileNotFoundError(
                f"{self.root / 'img_align_celeba'} is empty or incomplete (missing {first}); "
                "unzip img_align_celeba.zip there"
            )
        return names

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self._locate()
        size = self.image_shape[1]
        transform = v2.Compose([v2.PILToTensor(), v2.CenterCrop(178), v2.Resize((size, size), antialias=True)])
        folder = self.root / "img_align_celeba"
        partition = self._read_partition()
        for split, code in SPLITS.items():
            paths = [folder / name for name in partition[code]]
            setattr(self, f"{split}_set", ImageFiles(paths, [0] * len(paths), "RGB", transform))
