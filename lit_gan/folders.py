"""Folders of their own for runs and for a command's outputs."""

from __future__ import annotations

import itertools
import time
from pathlib import Path


def new_run_dir(root: str | Path, name: str) -> Path:
    """Claim `root/name-YYYYmmdd-HHMMSS` (with a suffix `-2`, `-3`, ... when taken) by creating it:
    `mkdir` either creates the folder or fails, so runs started at the same instant (one sweep
    agent per GPU) never share one."""
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def run_of(ckpt_path: str | Path | None) -> Path | None:
    """The run directory a checkpoint belongs to (`<run>/checkpoints/x.ckpt` beside `<run>/config.yaml`), if any."""
    if not ckpt_path:
        return None
    folder = Path(ckpt_path).parent
    return folder.parent if folder.name == "checkpoints" and (folder.parent / "config.yaml").is_file() else None
