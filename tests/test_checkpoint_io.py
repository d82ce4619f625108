"""Checkpoints survive a full disk and a kill mid-write, and are read without running code."""

from __future__ import annotations

import ast
import errno
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lit_gan import checkpoint_io
from lit_gan.callbacks import LastCheckpoint
from lit_gan.checkpoint_io import SafeCheckpointIO, read_checkpoint, with_safe_io, write_atomically
from lit_gan.metrics import cache
from lit_gan.metrics.classifier import load_checkpoint as load_classifier
from lit_gan.models import DCGAN, GAN
from tests.conftest import tiny
from tests.models.test_base import batches

REPO = Path(__file__).resolve().parents[1]


def fit_with_last_checkpoint(tmp_path: Path) -> tuple[L.Trainer, Path]:
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=1, limit_train_batches=2,
                        logger=False, enable_progress_bar=False, enable_model_summary=False, plugins=[SafeCheckpointIO()],
                        callbacks=[LastCheckpoint(dirpath=str(tmp_path / "checkpoints"))])
    trainer.fit(tiny(DCGAN), batches())
    return trainer, tmp_path / "checkpoints" / "last.ckpt"


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_how_much_space(tmp_path, monkeypatch):
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    trainer, last = fit_with_last_checkpoint(tmp_path / "run")
    assert isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO)
    before = last.read_bytes()

    def half_then_full(f, chunk):  # the disk fills up halfway through the write
        f.write(chunk[: len(chunk) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_io, "_write", half_then_full)
    with pytest.raises(OSError, match=r"no space left to write .*last.ckpt: it needs \d+\.\d MB; the previous last.ckpt"):
        trainer.save_checkpoint(last)
    assert last.read_bytes() == before  # the good checkpoint survives, byte for byte
    assert read_checkpoint(last)["batches_seen"] == 2
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]  # no temporary file beside it
    assert list(scratch.iterdir()) == []  # nor in $TMPDIR


def test_the_safe_io_is_a_plugin_given_explicitly_and_a_checkpoint_io_of_ones_own_is_kept():
    assert type(L.Trainer(logger=False, callbacks=[LastCheckpoint()]).strategy.checkpoint_io) is not SafeCheckpointIO
    plugins = with_safe_io(None)
    assert [type(p) for p in plugins] == [SafeCheckpointIO]
    assert isinstance(L.Trainer(logger=False, plugins=plugins).strategy.checkpoint_io, SafeCheckpointIO)
    own = TorchCheckpointIO()
    assert with_safe_io(own) == [own] and with_safe_io([own]) == [own]
    precision = L.pytorch.plugins.precision.Precision()
    assert [type(p) for p in with_safe_io(precision)] == [type(precision), SafeCheckpointIO]


KILLED_WRITER = """
import sys, time
from pathlib import Path
from lit_gan import checkpoint_io
def slow(f, chunk):
    f.write(chunk[:100]); f.flush(); time.sleep(60)
checkpoint_io._write = slow
checkpoint_io.write_atomically(b"x" * 5000, Path(sys.argv[1]))
"""


@pytest.mark.integration  # end-to-end: a subprocess killed mid-write
def test_a_kill_mid_write_leaves_the_old_file_and_the_next_write_clears_its_leftover(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"good")
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], env=env)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".last.ckpt.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert target.read_bytes() == b"good" and list(scratch.iterdir()) == []
    assert len(list(tmp_path.glob(".last.ckpt.*.tmp"))) == 1  # the killed writer's partial file, beside it
    write_atomically(b"new", target)
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "tmpdir"]


class RunsCode:
    """Unpickling this opens (creates) a file: what a planted checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_checkpoints_and_cache_entries_that_would_run_code_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    model = tiny(GAN)
    evil = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "payload": RunsCode(marker)}
    path = tmp_path / "evil.ckpt"
    torch.save(evil, path)
    for load in (read_checkpoint, GAN.load_from_checkpoint, SafeCheckpointIO().load_checkpoint,
                 lambda path: load_classifier(path, datamodule=None)):  # --evaluation.classifier_path
        with pytest.raises(ValueError, match="not a readable lit_gan checkpoint"):
            load(path)
    assert cache.load(path) is None  # a planted cache entry is recomputed
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x80\x02random bytes", "truncated"])
def test_an_unreadable_checkpoint_gets_one_line_and_no_unsafe_advice(tmp_path, content):
    _, last = fit_with_last_checkpoint(tmp_path / "run")
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(last.read_bytes()[:3000] if content == "truncated" else content)
    for load in (read_checkpoint, GAN.load_from_checkpoint, lambda path: tiny(DCGAN).load_weights(str(path))):
        with pytest.raises(ValueError, match=r"broken.ckpt is not a readable lit_gan checkpoint") as error:
            load(broken)
        assert "\n" not in str(error.value) and "weights_only=False" not in str(error.value)


def test_cache_entries_round_trip_numpy_statistics(tmp_path):
    import numpy as np

    entry = {"stats": {"mu": np.arange(3.0), "sigma": np.eye(3)}, "labels": torch.arange(4), "n": 5}
    loaded = cache.load(cache.save(entry, tmp_path / "ref.pt"))
    assert isinstance(loaded["stats"]["mu"], np.ndarray) and (loaded["stats"]["sigma"] == np.eye(3)).all()
    assert torch.equal(loaded["labels"], torch.arange(4)) and loaded["n"] == 5


def test_every_torch_load_in_lit_gan_is_weights_only_and_the_floor_is_safe():
    for path in (REPO / "lit_gan").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                flags = {k.arg: ast.unparse(k.value) for k in node.keywords}
                assert flags.get("weights_only") == "True", f"{path.name}:{node.lineno} loads with {flags}"
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_pin = next(p for p in pins if p.startswith("torch>="))
    assert tuple(int(v) for v in torch_pin.split(">=")[1].split(",")[0].split(".")) >= (2, 6)  # safe torch.load default
