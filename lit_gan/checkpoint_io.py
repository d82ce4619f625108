"""Checkpoints that survive a kill or a full disk, and that are read without running code.

Writing: the checkpoint is serialised in memory, then written to a hidden temporary file in the
destination's own folder, fsynced and renamed over the destination. A crash, a kill or a full
disk leaves the previous checkpoint as it was, and no temporary file anywhere else. Reading:
`torch.load(weights_only=True)` (tensors and plain data only), with one line naming the file
when it is not a readable checkpoint.

A Trainer writes and reads every checkpoint (the last, the best, Lightning's) this way with
`L.Trainer(plugins=[SafeCheckpointIO()])`; `lit-gan` passes it to every Trainer it builds.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import CheckpointIO, TorchCheckpointIO

CHUNK = 1 << 20


def read_checkpoint(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> dict[str, Any]:
    """A checkpoint's contents, loaded with `weights_only=True` (`mmap`: tensors mapped, not read);
    ValueError (one line, never a hint to load it unsafely) when the file is truncated, corrupt,
    empty or holds anything but data."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError) as error:
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        first = first.split(" Please file an issue")[0].split(" In PyTorch 2.6")[0]
        raise ValueError(f"{path} is not a readable lit_gan checkpoint (truncated, corrupt, or holding more than "
                         f"tensors and plain data): {first[:200]}") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} is not a lit_gan checkpoint (it holds a {type(checkpoint).__name__}, not a dict)")
    return checkpoint


def write_atomically(data: bytes | memoryview, path: Path) -> None:
    """`data` to `path` via a hidden temporary file beside it: fsync, rename, fsync the folder.
    On any failure the temporary file is removed and `path` is untouched; a full disk says how
    much space the file needs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            for start in range(0, len(data), CHUNK):
                _write(f, data[start : start + CHUNK])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(error.errno, f"no space left to write {path}: it needs {len(data) / 1e6:.1f} MB; the "
                          f"previous {path.name}, if any, is kept. Free some space and resume from it") from None
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write(f: io.BufferedWriter, chunk: bytes | memoryview) -> None:
    f.write(chunk)


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of `path` left by processes that were killed mid-write."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        pid = stale.name[len(path.name) + 2 : -4]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                stale.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic local writes and safe reads (remote paths: Lightning's);
    a Trainer plugin: `L.Trainer(plugins=[SafeCheckpointIO()])`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if not _is_local_file_protocol(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomically(buffer.getbuffer(), Path(path))

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        if not _is_local_file_protocol(path):
            return super().load_checkpoint(path, map_location, weights_only=True)
        return read_checkpoint(path, map_location if map_location is not None else "cpu")


def with_safe_io(plugins: Any = None) -> list[Any]:
    """A Trainer's `plugins` (None, one or a list) plus `SafeCheckpointIO`, unless they hold a checkpoint IO already."""
    given = [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    return given if any(isinstance(p, CheckpointIO) for p in given) else [*given, SafeCheckpointIO()]
