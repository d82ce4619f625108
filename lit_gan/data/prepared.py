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

import errno
import hashlib
import inspect
import io
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

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two prepares into one --out are not detected there
    fcntl = None  # type: ignore[assignment]

FORMAT = "lit_gan.prepared/1"
RECORD = "record.json"
BLOCK = 1024
"""Images per unit of work; a re-run of an interrupted prepare continues at the first unfinished block."""
SPLITS = ("train", "val", "test")
LOCK = ".lock"
"""In ``<out>.partial``: flock-ed by the prepare writing there (the OS drops it when the process dies);
holds its pid."""
SPARE = 1 << 20
"""Bytes asked for on top of the arrays (record.json, progress.json)."""
ZEROS = 1 << 24
"""Bytes per write when a file system cannot fallocate and the arrays are reserved by writing zeros."""
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


class NoSpace(OSError, ValueError):
    """A prepare that does not fit on its disk: an ``OSError`` with errno ENOSPC (or EDQUOT), and a
    ``ValueError`` so that the CLI shows it as one ``lit-gan: error: ...`` line."""

    def __init__(self, message: str, code: int = errno.ENOSPC) -> None:
        super().__init__(code, message)

    def __str__(self) -> str:
        return str(self.strerror)


def open_split(
    folder: str | Path, count: int | None = None, image_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None, fix: str = "prepare it again with `lit-gan prepare ... --overwrite true`",
) -> UInt8Images:
    """A prepared split as :class:`UInt8Images` over its memory maps (copy-on-write: never written back).

    Both files are checked before anything is mapped: their headers (dtype, shape against ``count``
    images of ``image_shape``, as many labels as images), their sizes against those headers, and the
    labels against ``num_classes``. Any disagreement is a one-line error naming the file and ending in ``fix``.
    """
    folder = Path(folder)
    n = _check_array(folder / "images.npy", np.uint8, (count, *(image_shape or (None, None, None))), "images", fix)[0]
    _check_array(folder / "labels.npy", np.int64, (n,), "labels", fix)
    labels = np.load(folder / "labels.npy")
    if num_classes is not None and len(labels):
        low, high, classes = int(labels.min()), int(labels.max()), max(num_classes, 1)
        if low < 0 or high >= classes:
            raise ValueError(f"{folder / 'labels.npy'}: labels run {low}..{high}, but {RECORD} says num_classes "
                             f"{num_classes} (labels 0..{classes - 1}); {fix}")
    images = torch.from_numpy(np.load(folder / "images.npy", mmap_mode="c"))
    return UInt8Images(images, torch.from_numpy(labels))


def _check_array(path: Path, dtype: Any, shape: tuple[int | None, ...], what: str, fix: str) -> tuple[int, ...]:
    """The shape of the .npy file at ``path`` once its header and size agree with ``dtype`` and ``shape``
    (None: any); a one-line ValueError (FileNotFoundError when missing) naming it otherwise. Maps nothing."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; {fix}")
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            headers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            read = headers.get(version)
            if read is None:
                raise ValueError(f"format version {version[0]}.{version[1]}, expected 1.0 or 2.0")
            found, fortran, found_dtype = read(file)
            offset = file.tell()
    except (ValueError, SyntaxError, EOFError) as error:
        raise ValueError(f"{path} is not a readable NumPy array file ({' '.join(str(error).split())}); {fix}") from None
    expected_shape = "(" + ", ".join("N" if d is None else str(d) for d in shape) + ("," * (len(shape) == 1)) + ")"
    if found_dtype != np.dtype(dtype) or fortran:
        raise ValueError(f"{path}: {what} are {found_dtype}{' in Fortran order' if fortran else ''}, expected "
                         f"{np.dtype(dtype)}; {fix}")
    if len(found) != len(shape) or any(want is not None and want != got for want, got in zip(shape, found)):
        if what == "images" and len(found) == len(shape) == 4 and shape[0] is not None and shape[0] != found[0] \
                and tuple(found[1:]) == tuple(shape[1:]):
            raise ValueError(f"{path} holds {found[0]} images, but {RECORD} says {shape[0]}; {fix}")
        raise ValueError(f"{path}: {what} of shape {tuple(found)}, expected {expected_shape}"
                         f"{' from ' + RECORD if what == 'images' else ' (one label per image)'}; {fix}")
    size, expected = path.stat().st_size, offset + int(np.prod(found, dtype=np.int64)) * np.dtype(dtype).itemsize
    if size != expected:
        state = "truncated" if size < expected else "longer than its header says"
        raise ValueError(f"{path} is {state}: {size:,} bytes, expected {expected:,} for {what} of shape "
                         f"{tuple(found)}; {fix}")
    return tuple(found)


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
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else record
        raise ValueError(f"{path}/{RECORD}: format {found!r}, this lit_gan reads {FORMAT!r}; "
                         "prepare the dataset again")
    _check_record(record, f"{path}/{RECORD}", _reprepare(record, path))
    return record


def _check_record(record: dict[str, Any], where: str, fix: str) -> None:
    """What the loader relies on in a record: a one-line ValueError naming the field otherwise."""

    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    shape, classes, splits = record.get("image_shape"), record.get("num_classes"), record.get("splits")
    if not (isinstance(shape, list) and len(shape) == 3 and all(count(d) and d > 0 for d in shape)):
        raise ValueError(f"{where}: image_shape is {shape!r}, expected [C, H, W] (positive integers); {fix}")
    if not count(classes):
        raise ValueError(f"{where}: num_classes is {classes!r}, expected an integer >= 0; {fix}")
    if not isinstance(splits, dict) or not all(count(splits.get(name)) for name in ("train", "val")) \
            or splits.get("test", "val") != "val" and not count(splits.get("test")):
        raise ValueError(f"{where}: splits is {splits!r}, expected image counts for train and val (and test, or "
                         f"test: \"val\"); {fix}")


def _reprepare(record: dict[str, Any], path: str | Path) -> str:
    """The fix for a prepared folder (or URL) that disagrees with its record: prepare it again."""
    source = record.get("source") if isinstance(record.get("source"), dict) else {}
    cls = str(source.get("class", "<dataset>")).rsplit(".", 1)[-1]
    command = f"`lit-gan prepare --data {cls} ... --overwrite true` (its arguments are in {RECORD})"
    if is_url(path):
        command = command.replace(" --overwrite", " --out DIR --overwrite")
        return f"prepare it again with {command} and upload DIR to {path}"
    return f"prepare it again with {command.replace(' --overwrite', f' --out {path} --overwrite')}"


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
        num_workers: int | None = 0,  # memory-mapped: loading in the main process is fastest
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir=path, image_size=image_size, num_workers=num_workers, **kwargs)
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
        fix = _reprepare(self.record, self.path if is_url(self.path) else root)
        if is_url(self.path):
            fix += f", then delete the copy {root}"
        splits, shape, classes = self.record["splits"], tuple(self.record["image_shape"]), self._num_classes
        self.train_set = open_split(root / "train", splits["train"], shape, classes, fix)
        self.val_set = open_split(root / "val", splits["val"], shape, classes, fix)
        test = splits.get("test")
        if test == "val" or test is None and not (root / "test").is_dir():
            self.test_set = self.val_set
        else:  # a count, or (records without one) a test folder
            self.test_set = open_split(root / "test", test, shape, classes, fix)


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

    One prepare at a time writes to ``out`` (a second one stops at once, naming the first's pid).
    The arrays are reserved on disk before the first image is written (``posix_fallocate``, or zeros
    where a file system cannot): a disk without room for them is refused up front and a disk
    that fills anyway stops it with :class:`NoSpace`, never with a bus error in the middle.
    """
    out = Path(out)
    if isinstance(datamodule, Prepared):
        raise ValueError("this dataset is prepared already; give the original dataset to `lit-gan prepare`")
    if hasattr(datamodule, "in_memory"):
        datamodule.in_memory = False  # read the files one by one, not into memory first
    source = _source_record(datamodule)
    _refuse_finished(out, source, overwrite)
    datamodule.setup("fit")
    splits = {"train": datamodule.train_set, "val": datamodule.val_set}
    test = datamodule.test_set if datamodule.test_set is not None else datamodule.val_set
    if test is not datamodule.val_set:
        splits["test"] = test
    shape = tuple(datamodule.image_shape)
    counts = {name: len(dataset) for name, dataset in splits.items()}  # type: ignore[arg-type]

    partial = _partial(out)
    progress_file = partial / "progress.json"
    lock = _lock(partial, out)  # from here on this process alone writes to partial and out
    state: dict[str, Any] = {"source": source, "blocks": {}}
    finished = False
    try:
        if progress_file.is_file():
            state = json.loads(progress_file.read_text())
        _refuse_finished(out, source, overwrite, remove=True)  # another prepare may have finished meanwhile
        if state.get("source") != source:  # an interrupted prepare of something else: start over
            _empty(partial)
            state = {"source": source, "blocks": {}}
        arrays = {name: {"images.npy": (np.uint8, (n, *shape)), "labels.npy": (np.int64, (n,))}
                  for name, n in counts.items()}
        for name, files in arrays.items():  # keep only what a resume can use
            folder = partial / name
            for tmp in folder.glob("*.tmp"):
                tmp.unlink()  # an allocation cut short
            try:
                for file, (dtype, file_shape) in files.items():
                    if (folder / file).is_file():
                        _check_array(folder / file, dtype, file_shape, file.removesuffix(".npy"), "")
            except ValueError:
                for file in files:
                    (folder / file).unlink(missing_ok=True)
                state["blocks"].pop(name, None)
        needed = SPARE + sum(_unreserved(partial / name / file, dtype, file_shape)
                             for name, files in arrays.items() for file, (dtype, file_shape) in files.items())
        free = shutil.disk_usage(partial).free
        if needed > free:
            raise NoSpace(f"no space left on device: preparing {out} needs {_size(needed)}, the disk of {partial} "
                          f"has {_size(free)} free; free some space there or choose another --out")
        for name, files in arrays.items():
            (partial / name).mkdir(exist_ok=True)
            for file, (dtype, file_shape) in files.items():
                _allocate(partial / name / file, dtype, file_shape)
        _write_json(progress_file, state)
        _write_splits(datamodule, splits, shape, partial, state, progress_file, workers)
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
        finished = True
    except OSError as error:
        if error.errno not in DISK_FULL or isinstance(error, NoSpace):
            raise
        where = f" ({error.filename})" if error.filename else ""
        raise NoSpace(f"no space left on device while preparing {out}{where}: {os.strerror(error.errno)}; free some "
                      "space there and run the same `lit-gan prepare` again (it continues where it stopped)",
                      error.errno) from None
    finally:
        if finished:
            (out / LOCK).unlink(missing_ok=True)
        elif not any(state["blocks"].values()):  # nothing worth resuming: leave no folder behind (nor its space)
            shutil.rmtree(partial, ignore_errors=True)
        if lock is not None:
            os.close(lock)  # releases the flock
    return out


def _write_splits(datamodule: ImageDataModule, splits: dict[str, Dataset], shape: tuple[int, ...], partial: Path,
                  state: dict[str, Any], progress_file: Path, workers: int | None) -> None:
    """Fill the reserved arrays block by block, recording each finished block in ``progress_file``."""
    threads = workers if workers is not None else default_workers()
    for name, dataset in splits.items():
        n = len(dataset)  # type: ignore[arg-type]
        images = np.lib.format.open_memmap(partial / name / "images.npy", mode="r+")
        labels = np.lib.format.open_memmap(partial / name / "labels.npy", mode="r+")
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


def _refuse_finished(out: Path, source: dict[str, Any], overwrite: bool, remove: bool = False) -> None:
    """Stop unless ``out`` may be written: absent, empty, or a prepared folder and ``overwrite``
    (then removed if ``remove``)."""
    # (the record checked after the listing: a prepare finishing meanwhile renames its whole folder into place)
    if out.exists() and any(out.iterdir()) and not (out / RECORD).is_file():
        raise FileExistsError(f"{out} exists and is not a prepared dataset; choose another --out")
    if (out / RECORD).is_file():
        if not overwrite:
            same = read_record(out)["source"] == source
            raise FileExistsError(f"{out} is prepared already" + (" from this very source" if same else " from another source")
                                  + "; use it, choose another --out, or pass --overwrite true")
        if remove:
            shutil.rmtree(out)


def _lock(partial: Path, out: Path) -> int | None:
    """Create ``partial`` and hold the flock of its :data:`LOCK` file (its descriptor: close it to release).

    The lock is taken without waiting: a prepare running there already stops this one with its pid.
    A lock file that was renamed with its folder or removed while this process was taking it is not
    the one the next prepare will look at: it is dropped and the current one taken instead.
    """
    if fcntl is None:
        partial.mkdir(parents=True, exist_ok=True)
        return None
    for _ in range(100):
        path = partial / LOCK
        try:
            partial.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except (FileNotFoundError, FileExistsError):  # the folder went away (renamed into place, or given up)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise FileExistsError(f"another `lit-gan prepare` ({f'pid {pid}' if pid.isdigit() else 'its pid unknown'}) "
                                  f"is writing to {out}; wait for it or choose another --out") from None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        held = os.fstat(fd)
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)
    raise FileExistsError(f"cannot take the lock {partial / LOCK}: other `lit-gan prepare` runs keep replacing it; "
                          f"wait for them or choose another --out")


def _empty(folder: Path) -> None:
    """Remove everything in ``folder`` but its lock."""
    for child in folder.iterdir():
        if child.name != LOCK:
            shutil.rmtree(child) if child.is_dir() else child.unlink()


def _layout(dtype: Any, shape: tuple[int, ...]) -> tuple[bytes, int]:
    """The .npy header of an array, and the bytes of its data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape})
    return header.getvalue(), int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _unreserved(path: Path, dtype: Any, shape: tuple[int, ...]) -> int:
    """Bytes of the array file ``path`` that are not on disk yet (all of them when it does not exist)."""
    header, size = _layout(dtype, shape)
    total = len(header) + size
    if not path.is_file():
        return total
    return max(0, total - path.stat().st_blocks * 512)


def _allocate(path: Path, dtype: Any, shape: tuple[int, ...]) -> None:
    """Make ``path`` an .npy array of ``shape`` whose every byte is reserved on disk, so that writing
    through a memory map can never hit a full disk (a SIGBUS). A new file is written as ``.tmp`` and
    renamed, so an existing ``path`` is always whole; an existing one gets its holes (a sparse file of
    an earlier lit_gan) reserved."""
    if path.is_file():
        fd = os.open(path, os.O_RDWR)
        try:
            _reserve(fd, 0, os.fstat(fd).st_size, fresh=False)
        finally:
            os.close(fd)
        return
    header, size = _layout(dtype, shape)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, header)
            _reserve(fd, len(header), size, fresh=True)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)  # give back what was reserved
        if isinstance(error, OSError) and error.filename is None:
            error.filename = str(path)
        raise


def _reserve(fd: int, offset: int, length: int, fresh: bool) -> None:
    """Reserve ``length`` bytes from ``offset`` of the open file ``fd`` (extending it): ``posix_fallocate``,
    else (``fresh`` files only: zeros must not overwrite data) by writing zeros. ENOSPC comes out as OSError."""
    if length <= 0:
        return
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(fd, offset, length)
            return
        except OSError as error:
            if error.errno not in (errno.EINVAL, getattr(errno, "EOPNOTSUPP", errno.EINVAL), errno.ENOSYS):
                raise
    if not fresh:
        return
    zeros = memoryview(bytes(min(ZEROS, length)))
    position, stop = offset, offset + length
    while position < stop:
        position += os.pwrite(fd, zeros[: min(len(zeros), stop - position)], position)


def _size(n: int) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


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
