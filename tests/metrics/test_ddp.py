"""Evaluation under DDP (2 CPU processes): rank 0 computes, every rank logs the same numbers, so
ModelCheckpoint(monitor="val/fid") works on both; files are written once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # two processes: an end-to-end run

SCRIPT = Path(__file__).with_name("ddp_script.py")


def test_two_processes_log_the_same_fid_and_write_files_once(tmp_path, cache_dir):
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "run"), str(cache_dir)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    logged = {(int(r), int(e)): float(f) for r, e, f in re.findall(r"RANK (\d) EPOCH (\d) FID ([-0-9.e+]+)", done.stdout)}
    assert set(logged) == {(0, 0), (1, 0), (0, 1), (1, 1)}, done.stdout
    assert logged[0, 0] == logged[1, 0] and logged[0, 1] == logged[1, 1]
    assert float(re.search(r"BEST ([-0-9.e+]+)", done.stdout).group(1)) == min(logged[0, 0], logged[0, 1])
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "metrics").iterdir()) == ["epoch_000.json", "epoch_001.json"]
    assert sorted(p.name for p in (run / "neighbours").iterdir()) == ["epoch_000.png", "epoch_001.png"]
