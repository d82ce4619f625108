"""Weights & Biases logging that never prompts and never hangs: online when there is an API key
and the server answers, offline otherwise (upload later with `wandb sync`), `WANDB_MODE` first."""

from __future__ import annotations

import csv
import io
import netrc
import os
import socket
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only


@dataclass
class WandbSettings:
    """Where and how a run is logged to W&B."""

    project: str = "lit_gan"
    entity: str | None = None
    tags: list[str] | None = None
    log_model: bool = False  # upload checkpoints as artifacts


def _host() -> str:
    return urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"


def has_api_key() -> bool:
    """An API key in the environment or in ~/.netrc (where `wandb login` puts it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(_host()) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def reachable(host: str, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def wandb_mode() -> tuple[str, str | None]:
    """The mode to log in and, when we chose offline ourselves, why."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"], None
    if not has_api_key():
        return "offline", "no API key; `wandb login` or WANDB_API_KEY logs online"
    if not reachable(_host()):
        return "offline", f"{_host()} is unreachable"
    return "online", None


def import_wandb(folder: Path) -> None:
    """Import wandb with its two temporary folders (`tmp*wandb-media`, `tmp*wandb-artifacts`, made
    at import) in `folder` instead of the system temp dir: a process that ends without Python's
    exit handlers (a killed run, a DDP worker) leaves them in its run, not in /tmp. Once imported,
    a process keeps its folders (removed at a normal exit)."""
    if "wandb" in sys.modules:
        return
    folder.mkdir(parents=True, exist_ok=True)
    system, tempfile.tempdir = tempfile.tempdir, str(folder)
    try:
        import wandb  # noqa: F401
        import wandb.sdk.artifacts.artifact  # noqa: F401
    finally:
        tempfile.tempdir = system


def wandb_logger(run_dir: str | Path, settings: WandbSettings, verbose: bool = True) -> WandbLogger:
    """A WandbLogger writing to `run_dir/wandb` (wandb's temporary folders too), named after the run directory."""
    mode, reason = wandb_mode()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    import_wandb(run_dir / "wandb")
    if reason and verbose:
        print(f"W&B: {reason}. Logging offline to {run_dir / 'wandb'}; upload later: wandb sync {run_dir / 'wandb'}/offline-run-*")
    logger = WandbLogger(
        name=run_dir.name,
        save_dir=str(run_dir),
        project=settings.project,
        entity=settings.entity,
        tags=settings.tags,
        log_model=settings.log_model,
        mode=mode,
    )
    logger._wandb_init.pop("anonymous", None)  # Lightning always passes it; wandb warns that it is unused
    return logger


class ResumableCSVLogger(CSVLogger):
    """A CSVLogger that continues an existing `metrics.csv` (a resumed run) instead of deleting it.
    `resume_at` (epoch, step) is where the resumed checkpoint was written: rows logged after it
    (by a run killed later) are dropped, since the resumed run logs those steps again."""

    def __init__(self, *args: Any, resume_at: tuple[int, int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume_at = resume_at

    @property
    def experiment(self) -> Any:
        if self._experiment is not None:
            return self._experiment
        path = Path(self.log_dir) / "metrics.csv"
        earlier = path.read_text() if path.is_file() else ""
        with warnings.catch_warnings():  # its "will be deleted" warning: we keep the file below
            warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
            writer = CSVLogger.experiment.fget(self)  # Lightning's writer removes an old metrics.csv
        if earlier and self.resume_at is not None:
            earlier = _rows_until(earlier, *self.resume_at)
        if earlier and rank_zero_only.rank == 0:
            path.write_text(earlier)
            writer.metrics_keys = sorted(next(csv.reader(io.StringIO(earlier))))
        return writer


def _rows_until(text: str, epoch: int, step: int) -> str:
    """The CSV `text` without the rows logged after (epoch, step)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "epoch" not in rows[0] or "step" not in rows[0]:
        return text
    keep = [r for r in rows if not r["epoch"] or not r["step"]
            or (int(float(r["epoch"])), int(float(r["step"]))) <= (epoch, step)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()), lineterminator="\n")
    writer.writeheader()
    writer.writerows(keep)
    return out.getvalue()
