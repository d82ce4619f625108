"""A folder of images: labeled by subfolder (``root/<class>/*.png``) or unlabeled (flat)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Subset
from torchvision.transforms import v2

from lit_gan.data.base import ImageDataModule, ImageFiles, UInt8Images, seeded_permutation, stack_dataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
IN_MEMORY_MAX_IMAGES = 20_000


def list_images(directory: Path, recursive: bool) -> list[Path]:
    """Sorted image files (by extension, case-insensitive) in ``directory``, skipping hidden names."""
    candidates = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(
        p for p in candidates
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )


class ImageFolder(ImageDataModule):
    """Images under ``root``, resized (shorter side) and center-cropped to ``image_size``.

    If ``root`` has subfolders holding images, each such subfolder is a class (sorted names,
    searched recursively) and files directly in ``root`` are ignored; otherwise the images directly
    in ``root`` are used unlabeled. ``channels``: 1 (grayscale) or 3 (RGB). ``in_memory``: load
    everything into a uint8 tensor at setup (None: when at most 20,000 images). A seeded
    ``val_fraction`` of the images is held out for val and test.

    Args:
        root: the image folder.
        image_size: images are resized (shorter side) and center-cropped to this size.
        channels: 1 (grayscale) or 3 (RGB).
        in_memory: hold all images as a uint8 tensor; None: when at most 20,000 images.
        val_fraction: fraction of images held out (seeded) for validation and test.
        kwargs: the base data module's (`ImageDataModule`: batch_size, value_range, num_workers
            (also threads loading the images into memory), predict_size, seed).
    """

    identity_args = (*ImageDataModule.identity_args, "channels", "val_fraction")

    def __init__(
        self,
        root: str = "data",
        image_size: int = 64,
        channels: int = 3,
        in_memory: bool | None = None,
        val_fraction: float = 0.1,
        **kwargs: Any,
    ) -> None:
        if image_size is None:
            raise ValueError("ImageFolder needs image_size (images are resized to image_size x image_size)")
        super().__init__(data_dir=root, image_size=image_size, **kwargs)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}; e.g. 0.1 holds out 10%")
        self.channels, self.in_memory, self.val_fraction = channels, in_memory, val_fraction
        self.native_shape = (channels, image_size, image_size)
        self.paths, self.labels = self._scan(Path(root))
        if in_memory is None:
            self.in_memory = len(self.paths) <= IN_MEMORY_MAX_IMAGES

    @property
    def transform_description(self) -> str:
        size = self.image_shape[1]
        return (f"{'grayscale' if self.channels == 1 else 'RGB'}; shorter side resized to {size} (antialiased), "
                f"center-crop {size}x{size}")

    def _scan(self, root: Path) -> tuple[list[Path], list[int]]:
        """List files (cheap: no image is opened) and set class_names/num_classes."""
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist; set --data.init_args.root to a folder of images")
        subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        per_class = [(d.name, files) for d in subdirs if (files := list_images(d, recursive=True))]
        if per_class:
            self.class_names = [name for name, _ in per_class]
            self._num_classes = len(per_class)
            return ([p for _, files in per_class for p in files],
                    [label for label, (_, files) in enumerate(per_class) for _ in files])
        paths = list_images(root, recursive=False)
        if not paths:
            raise FileNotFoundError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {root} or its subfolders; "
                "put the images there (class subfolders give labels)"
            )
        return paths, [0] * len(paths)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        size = self.image_shape[1]
        transform = v2.Compose([v2.PILToTensor(), v2.Resize(size, antialias=True), v2.CenterCrop(size)])
        files = ImageFiles(self.paths, self.labels, "L" if self.channels == 1 else "RGB", transform)
        n = len(files)
        n_val = min(n - 1, max(round(n * self.val_fraction), 1 if self.val_fraction > 0 else 0))
        order = seeded_permutation(n, self.seed)
        val_idx, train_idx = order[:n_val], order[n_val:]
        if self.in_memory:
            images, labels = stack_dataset(files, self.num_workers)
            self.train_set = UInt8Images(images[train_idx], labels[train_idx])
            self.val_set = UInt8Images(images[val_idx], labels[val_idx])
        else:
            self.train_set, self.val_set = Subset(files, train_idx.tolist()), Subset(files, val_idx.tolist())
        self.test_set = self.val_set
