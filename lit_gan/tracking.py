"""Weights & Biases logging that never prompts and never hangs: online when there is an API key
and the server answers, offline otherwise (upload later with `wandb sync`), `WANDB_MODE` first.
`log_image` sends a picture to every logger of a trainer that can show one (W&B, TensorBoard)."""

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

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image
from torch import Tensor


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


WANDB_MODES = ("online", "offline", "disabled", "shared", "dryrun", "run")
"""The values wandb accepts for WANDB_MODE."""


def reachable(host: str, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def check_wandb_mode() -> None:
    """An empty WANDB_MODE counts as unset (wandb itself would refuse it); an unknown one stops with
    the modes there are. No network: callable before anything is made."""
    if os.environ.get("WANDB_MODE") == "":
        del os.environ["WANDB_MODE"]
    mode = os.environ.get("WANDB_MODE")
    if mode is not None and mode not in WANDB_MODES:
        raise ValueError(f"WANDB_MODE={mode!r} is not a W&B mode: use one of {', '.join(WANDB_MODES)}, "
                         "or unset it (lit_gan then logs online when it can, else offline)")


def wandb_mode() -> tuple[str, str | None]:
    """The mode to log in and, when we chose offline ourselves, why (WANDB_MODE first: `check_wandb_mode`)."""
    check_wandb_mode()
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
        # no history/summary table after each command, no colour codes in logs and pipes; and none of
        # W&B's own lines when the line above already said where the run is and how to upload it
        settings=sys.modules["wandb"].Settings(quiet=True, show_colors=sys.stderr.isatty(), silent=bool(reason and verbose)),
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


def log_image(trainer: L.Trainer, key: str, image: str | Path | Tensor, step: int | None = None) -> None:
    """Send one picture to every logger of `trainer` that can show one; the others (CSV) get nothing.

    `image` is a file (a PNG grid) or a tensor (C, H, W) or (H, W): uint8, or float in [0, 1].
    Loggers with `log_image` (W&B, and any other with that method) get `images=[the file's path]`
    (a tensor becomes a PIL image); loggers with a TensorBoard `SummaryWriter` as `experiment` get
    `add_image(key, uint8 CHW tensor, step)`. `step` defaults to the step Lightning logs the
    metrics at (batches, for a GAN: `global_step` counts the D and G updates), so pictures line up
    with the scalars. Only the global rank zero logs."""
    if not trainer.is_global_zero or not trainer.loggers:
        return
    if step is None:  # Lightning's own step for `self.log` (its logger connector logs at this one)
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
    pixels: Tensor | None = None  # (C, H, W) uint8, made on the first logger that needs it
    for logger in trainer.loggers:
        if callable(getattr(logger, "log_image", None)):
            shown: Any = str(image) if isinstance(image, (str, Path)) else Image.fromarray(_hwc(_chw_uint8(image)))
            logger.log_image(key=key, images=[shown], step=step)
            continue
        add_image = getattr(getattr(logger, "experiment", None), "add_image", None)
        if callable(add_image):  # TensorBoard's SummaryWriter
            if pixels is None:
                pixels = _read_chw(image) if isinstance(image, (str, Path)) else _chw_uint8(image)
            add_image(key, pixels, step, dataformats="CHW")


def _chw_uint8(image: Tensor) -> Tensor:
    """A (C, H, W) or (H, W) picture, uint8 or float in [0, 1], as a (C, H, W) uint8 tensor."""
    image = image.detach().cpu()
    if image.ndim == 2:
        image = image.unsqueeze(0)
    if image.ndim != 3 or image.shape[0] not in (1, 3, 4):
        raise ValueError(f"an image is (C, H, W) with 1, 3 or 4 channels, or (H, W); got shape {tuple(image.shape)}")
    if image.dtype != torch.uint8:
        image = (image.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return image


def _hwc(image: Tensor) -> np.ndarray:
    """(C, H, W) uint8 as the array PIL takes: (H, W) for one channel, else (H, W, C)."""
    array = image.permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[2] == 1 else array


def _read_chw(path: str | Path) -> Tensor:
    """The picture in `path` as a (C, H, W) uint8 tensor (grey stays one channel)."""
    with Image.open(path) as picture:
        if picture.mode not in ("L", "RGB", "RGBA"):
            picture = picture.convert("RGBA" if "A" in picture.getbands() or "transparency" in picture.info else "RGB")
        array = np.array(picture)
    tensor = torch.from_numpy(array)
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
