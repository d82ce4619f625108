"""Prepared datasets: any lit_gan dataset decoded once into memory-mapped uint8 arrays.

``lit-gan prepare --data CelebA --data.init_args.image_size 64 --out data/celeba64`` writes

    data/celeba64/
        record.json                  what it was made from; written last: a folder without it is unfinished
        train/images.npy labels.npy  uint8 (N, C, H, W) and int64 (N,)
        val/...   test/...           (test is absent when the source uses its val split as test)

and ``--data Prepared --data.init_args.path data/celeba64`` trains from it. Reading is a NumPy
memory map: a batch is one fancy-indexed read of whole rows, the OS page cache holds what fits in
memory and pages in the rest, and every DDP rank reads only its sampler's share.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lit_gan.data.base import ImageDataModule, UInt8Images, default_workers
from lit_gan.progress import bar

FORMAT = "lit_gan.prepared/1"
RECORD = "record.json"
BLOCK = 1024
"""Images per unit of work; a re-run of an interrupted prepare continues at the first unfinished block."""
SPLITS = ("train", "val", "test")


def open_split(folder: str | Path) -> UInt8Images:
    """A prepared split as :class:`UInt8Images` over its memory maps (copy-on-write: never written back)."""
    folder = Path(folder)
    images = torch.from_numpy(np.load(folder / "images.npy", mmap_mode="c"))
    return UInt8Images(images, torch.from_numpy(np.load(folder / "labels.npy")))


def is_url(path: str | Path) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def _filesystem(url: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    try:
        return url_to_fs(url)
    except (ImportError, ValueError) as error:
        raise ValueError(f"cannot open {url}: {error}; install the fsspec driver for it "
                         "(s3fs for s3://, gcsfs for gs://, adlfs for az://)") from None


def read_record(path: str | Path) -> dict[str, Any]:
    """The record of a finished prepared dataset (a folder or an fsspec URL); a clear error for anything else."""
    if is_url(path):
        fs, root = _filesystem(str(path))
        if not fs.exists(f"{root}/{RECORD}"):
            raise FileNotFoundError(f"{path} is not a prepared dataset (no {RECORD} there); prepare it locally with "
                                    f"`lit-gan prepare ... --out DIR` and upload DIR to {path}")
        record = json.loads(fs.cat_file(f"{root}/{RECORD}"))
    else:
        path = Path(str(path).removeprefix("file://"))
        if not (path / RECORD).is_file():
            partial = _partial(path)
            if partial.is_dir():
                raise FileNotFoundError(f"{path} is not finished ({partial} holds an interrupted prepare); re-run "
                                        "the same `lit-gan prepare` command to complete it")
            raise FileNotFoundError(f"{path} is not a prepared dataset (no {RECORD}); make one with "
                                    f"`lit-gan prepare --data <dataset> ... --out {path}`")
        record = json.loads((path / RECORD).read_text())
    if record.get("format") != FORMAT:
        raise ValueError(f"{path}/{RECORD}: format {record.get('format')!r}, this lit_gan reads {FORMAT!r}; "
                         "prepare the dataset again")
    return record


def local_copy(url: str, cache_dir: str | Path) -> Path:
    """The prepared dataset at ``url``, copied once into ``cache_dir/<hash of url and record>``.

    Each process (every DDP rank of a node) may call it: a copy goes to a private ``.partial``
    folder, gets its record last and is renamed into place; whoever finishes second drops theirs.
    """
    fs, root = _filesystem(url)
    record = fs.cat_file(f"{root}/{RECORD}")
    local = Path(cache_dir).expanduser() / hashlib.sha1(url.encode() + record).hexdigest()[:16]
    if (local / RECORD).is_file():
        return local
    splits = [name for name, n in json.loads(record)["splits"].items() if not isinstance(n, str)]
    tmp = local.with_name(f"{local.name}.{os.getpid()}.partial")
    with bar(total=2 * len(splits), desc=f"copy {url}", unit="file") as progress:
        for split in splits:
            (tmp / split).mkdir(parents=True, exist_ok=True)
            for name in ("images.npy", "labels.npy"):
                fs.get_file(f"{root}/{split}/{name}", str(tmp / split / name))
                progress.update()
    (tmp / RECORD).write_bytes(record)
    try:
        os.replace(tmp, local)
    except OSError:  # another process put its copy there first
        shutil.rmtree(tmp)
    return local


class Prepared(ImageDataModule):
    """A dataset written by ``lit-gan prepare``: uint8 memory maps, seeded shuffling by epoch,
    exact mid-epoch resume, per-rank shares under DDP, labels for conditional models.

    Args:
        path: the prepared folder (``--out`` of ``lit-gan prepare``), or an fsspec URL of one
            (s3://, gs://, az://, https://, ...: copied once into ``cache_dir``, then memory-mapped).
        cache_dir: where copies of URLs go.
        image_size: the size training expects; must equal the prepared size (None: take it).
        channels: the channels training expects (None: take them).
        batch_size, value_range, num_workers, predict_size, seed: as for every data module.
    """

    identity_args = ()

    def __init__(
        self,
        path: str = "data/prepared",
        cache_dir: str = "~/.cache/lit_gan/prepared",
        image_size: int | None = None,
        channels: int | None = None,
        batch_size: int = 64,
        value_range: tuple[float, float] = (-1.0, 1.0),
        num_workers: int | None = 0,
        predict_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__(data_dir=path, batch_size=batch_size, image_size=image_size, value_range=value_range,
                         num_workers=num_workers, predict_size=predict_size, seed=seed)
        self.path, self.cache_dir = path, cache_dir
        self.record = read_record(path)
        c, h, w = self.record["image_shape"]
        source = self.record["source"]["class"]
        if image_size is not None and (h, w) != (image_size, image_size):
            raise ValueError(f"{path} holds {h}x{w} images (prepared from {source}), but image_size={image_size} was "
                             f"asked for; set --data.init_args.image_size {h}, or prepare again with "
                             f"--data.init_args.image_size {image_size}")
        if channels is not None and channels != c:
            raise ValueError(f"{path} holds {c}-channel images, but channels={channels} was asked for; set "
                             f"--data.init_args.channels {c}, or prepare again")
        self.native_shape = (c, h, w)
        self.image_size = None
        self._num_classes = int(self.record["num_classes"])
        self.class_names = list(self.record["class_names"])
        self.paper_benchmark = bool(self.record.get("paper_benchmark", False))

    def cache_identity(self) -> dict[str, Any]:
        """The source's identity: the same pixels share its cached classifier and real statistics."""
        return self.record["source"]["identity"]

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        root = local_copy(self.path, self.cache_dir) if is_url(self.path) else Path(self.path.removeprefix("file://"))
        self.train_set = open_split(root / "train")
        self.val_set = open_split(root / "val")
        self.test_set = open_split(root / "test") if (root / "test").is_dir() else self.val_set


# ------------------------------------------------------------------------- writing
def _partial(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def _source_record(datamodule: ImageDataModule) -> dict[str, Any]:
    cls = type(datamodule)
    loading = {"batch_size", "num_workers", "predict_size", "value_range", "in_memory", "download"}
    names = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "kwargs", *loading)]
    args = {n: getattr(datamodule, "data_dir" if n == "root" else n) for n in names
            if hasattr(datamodule, "data_dir" if n == "root" else n)}
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "args": _jsonable(args),
            "identity": _jsonable(datamodule.cache_identity())}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def prepare(datamodule: ImageDataModule, out: str | Path, workers: int | None = None, overwrite: bool = False) -> Path:
    """Decode, crop and resize every split of ``datamodule`` once into ``out`` (see the module doc).

    Work goes to ``<out>.partial`` in blocks of :data:`BLOCK` images, read by ``workers`` threads;
    the folder is renamed to ``out`` only when complete. An interrupted run continues where it
    stopped when started again with the same source; a finished ``out`` is left alone unless
    ``overwrite``. A file that cannot be read stops it with its name, and nothing is taken as finished.
    """
    out = Path(out)
    if isinstance(datamodule, Prepared):
        raise ValueError("this dataset is prepared already; give the original dataset to `lit-gan prepare`")
    if hasattr(datamodule, "in_memory"):
        datamodule.in_memory = False  # read the files one by one, not into memory first
    source = _source_record(datamodule)
    if (out / RECORD).is_file():
        if not overwrite:
            same = read_record(out)["source"] == source
            raise FileExistsError(f"{out} is prepared already" + (" from this very source" if same else " from another source")
                                  + "; use it, choose another --out, or pass --overwrite true")
        shutil.rmtree(out)
    elif out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a prepared dataset; choose another --out")
    partial = _partial(out)
    progress_file = partial / "progress.json"
    if partial.is_dir():
        done = json.loads(progress_file.read_text()) if progress_file.is_file() else {}
        if done.get("source") != source:
            shutil.rmtree(partial)  # an interrupted prepare of something else: start over
    partial.mkdir(parents=True, exist_ok=True)
    state = json.loads(progress_file.read_text()) if progress_file.is_file() else {"source": source, "blocks": {}}

    datamodule.setup("fit")
    splits = {"train": datamodule.train_set, "val": datamodule.val_set}
    test = datamodule.test_set if datamodule.test_set is not None else datamodule.val_set
    if test is not datamodule.val_set:
        splits["test"] = test
    shape = tuple(datamodule.image_shape)
    threads = workers if workers is not None else default_workers()
    counts: dict[str, int] = {}
    for name, dataset in splits.items():
        n = len(dataset)  # type: ignore[arg-type]
        counts[name] = n
        folder = partial / name
        folder.mkdir(exist_ok=True)
        mode = "r+" if (folder / "images.npy").is_file() else "w+"
        images = np.lib.format.open_memmap(folder / "images.npy", mode=mode, dtype=np.uint8, shape=(n, *shape))
        labels = np.lib.format.open_memmap(folder / "labels.npy", mode=mode, dtype=np.int64, shape=(n,))
        done = set(state["blocks"].get(name, []))
        todo = [b for b in range(0, n, BLOCK) if b not in done]
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool, \
                bar(total=n, initial=n - sum(min(BLOCK, n - b) for b in todo), desc=f"prepare {name}", unit="img") as progress:
            for start in todo:
                stop = min(start + BLOCK, n)
                block_images, block_labels = _read_block(dataset, start, stop, pool)
                if tuple(block_images.shape[1:]) != shape:
                    raise ValueError(f"{type(datamodule).__name__} gave {tuple(block_images.shape[1:])} images, "
                                     f"expected {shape}")
                images[start:stop] = block_images.numpy()
                labels[start:stop] = block_labels.numpy()
                images.flush()
                labels.flush()
                state["blocks"].setdefault(name, []).append(start)
                _write_json(progress_file, state)
                progress.update(stop - start)
        del images, labels
    record = {
        "format": FORMAT,
        "source": source,
        "image_shape": list(shape),
        "num_classes": datamodule.num_classes,
        "class_names": list(datamodule.class_names),
        "paper_benchmark": bool(datamodule.paper_benchmark),
        "splits": counts | ({} if "test" in splits else {"test": "val"}),
        "transform": datamodule.transform_description,
    }
    progress_file.unlink()
    _write_json(partial / RECORD, record)
    if out.exists():
        out.rmdir()  # empty (checked above)
    os.replace(partial, out)
    return out


def _read_block(dataset: Dataset, start: int, stop: int, pool: ThreadPoolExecutor) -> tuple[Tensor, Tensor]:
    if isinstance(dataset, UInt8Images):
        return dataset.__getitems__(list(range(start, stop)))
    items = list(pool.map(dataset.__getitem__, range(start, stop)))
    images, labels = zip(*items)
    return torch.stack(images), torch.as_tensor([int(y) for y in labels], dtype=torch.long)


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


def main(args: list[str] | None = None) -> Path:
    """`lit-gan prepare --data <dataset> [--data.init_args.* ...] --out DIR [--workers N] [--overwrite true]`."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="lit-gan prepare", description=__doc__.split("\n\n")[0], exit_on_error=False)
    parser.add_subclass_arguments(ImageDataModule, "data", required=True,
                                  help="the dataset to prepare, with the same --data arguments as `lit-gan fit`")
    parser.add_argument("--out", type=str, required=True, help="the prepared folder to write")
    parser.add_argument("--workers", type=int | None, default=None, help="threads decoding images (default: CPUs, at most 8)")
    parser.add_argument("--overwrite", type=bool, default=False, help="replace a finished prepared folder at --out")
    config = parser.parse_args(args)
    data = parser.instantiate_classes(config).data
    out = prepare(data, config.out, workers=config.workers, overwrite=config.overwrite)
    record = read_record(out)
    counts = ", ".join(f"{k} {v}" for k, v in record["splits"].items())
    print(f"Prepared {record['source']['class'].rsplit('.', 1)[-1]} ({'x'.join(map(str, record['image_shape']))}; "
          f"{counts}) in {out}; train from it with --data Prepared --data.init_args.path {out}")
    return out
