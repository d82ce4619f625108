"""Fault battery: real `lit-gan` runs, killed, signalled, started together, fed broken files and
NaNs, and a full disk; checkpoints with planted code, configs and checkpoints reused for other runs
and data, a huge `generate`, broken and concurrent prepared folders, 16-bit images, SIGTERM while the
evaluation classifier trains. Prints one row per case: what happened and what data was lost (must be none).

Run:  PYTHONPATH=. python bench/faults.py [--kills 5] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
TINY = ["--model=DCGAN", "--data=EmbeddedMNIST", "--model.init_args.generator.init_args.width=8",
        "--model.init_args.discriminator.init_args.width=8", "--model.init_args.latent_dim=16",
        "--data.init_args.batch_size=16", "--trainer.limit_train_batches=20", "--trainer.limit_val_batches=0",
        "--evaluation.every_n_epochs=0", "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false", "--trainer.log_every_n_steps=1", "--seed_everything=3"]
ENV = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO), "JSONARGPARSE_DEPRECATION_WARNINGS": "off"}
SLOW_SAVE = """
import sys, time
from lit_gan import checkpoint_io
from lit_gan.cli import main
real = checkpoint_io._write
def slow(f, chunk):  # every checkpoint write takes a while: room to be killed in the middle of one
    real(f, chunk[: len(chunk) // 2]); f.flush(); time.sleep(2); real(f, chunk[len(chunk) // 2 :])
checkpoint_io._write = slow
main(sys.argv[1:])
"""
FULL_DISK = """
import errno, sys
from lit_gan import checkpoint_io
from lit_gan.cli import main
real, saves = checkpoint_io._write, []
def full(f, chunk):  # the disk fills up during the second epoch's save
    saves.append(1)
    if len(saves) > 1:
        real(f, chunk[: len(chunk) // 2]); raise OSError(errno.ENOSPC, "No space left on device")
    real(f, chunk)
checkpoint_io._write = full
main(sys.argv[1:])
"""
SLOW_PREPARE = """
import sys, time
from lit_gan.data import prepared
from lit_gan.cli import main
real = prepared._write_splits
def slow(*args, **kwargs):  # the output's lock is held a while: room for a second prepare to start
    time.sleep(6); return real(*args, **kwargs)
prepared._write_splits = slow
main(sys.argv[1:])
"""


def disk_script(free: int, enospc: bool = False) -> str:
    """`lit-gan` on a disk that reports `free` bytes; `enospc`: every allocation fails with ENOSPC
    (the stand-in for a real small disk where none can be mounted)."""
    return f"""
import errno, os, shutil, sys
real = shutil.disk_usage
shutil.disk_usage = lambda path: real(path)._replace(free={free})
if {enospc}:
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.posix_fallocate = full
from lit_gan.cli import main
main(sys.argv[1:])
"""


def lit_gan(*args: str, code: str | None = None) -> subprocess.Popen:
    head = [sys.executable, "-c", code] if code else [sys.executable, "-m", "lit_gan"]
    return subprocess.Popen([*head, "fit", *TINY, *args], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(*args: str, code: str | None = None) -> tuple[int, str]:
    proc = lit_gan(*args, code=code)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def cli(*args: str, code: str | None = None, env: dict | None = None) -> subprocess.Popen:
    """Any `lit-gan` command (`fit`, `validate`, `generate`, `prepare`), arguments as given."""
    head = [sys.executable, "-c", code] if code else [sys.executable, "-m", "lit_gan"]
    return subprocess.Popen([*head, *args], env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def command(*args: str, code: str | None = None, env: dict | None = None) -> tuple[int, str]:
    proc = cli(*args, code=code, env=env)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def peak_rss(*args: str, timeout: float) -> tuple[int, str, float]:
    """(exit code, output, peak resident memory in MB) of one `lit-gan` command, killed after `timeout` s."""
    proc = cli(*args)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    out = proc.stdout.read()  # type: ignore[union-attr]
    killer.cancel()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN sums all of them)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()  # type: ignore[union-attr]
    return proc.returncode, out, usage.ru_maxrss / 1024


def refused(code: int, out: str, want: int = 2) -> bool:
    """Stopped with exit `want` and one `lit-gan: error:` line, the last one, and no traceback."""
    lines = out.strip().splitlines()
    errors = [line for line in lines if line.startswith("lit-gan: error:")]
    return code == want and len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in out


def last_line(out: str) -> str:
    lines = out.strip().splitlines()
    return lines[-1] if lines else ""


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def listing(folder: Path) -> dict[str, str | None]:
    """Every file under `folder` with its digest: a run folder that nothing touched lists the same."""
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def state(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def readable(ckpt: Path) -> bool:
    try:
        checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
        return all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
    except Exception:  # noqa: BLE001
        return False


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def steps_logged_once(run_dir: Path) -> bool:
    with open(run_dir / "metrics.csv", newline="") as f:
        steps = [(r["epoch"], r["step"]) for r in csv.DictReader(f) if r.get("train/d_loss")]
    return len(steps) == len(set(steps)) == 60  # 3 epochs x 20 batches


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def stray_temporaries(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*.tmp")]


# ----- the cases: each returns (outcome, data lost) -------------------------------------------
def kill_during_checkpoint_write(root: Path, reference: dict) -> tuple[str, str]:
    run_dir = root / "kill-write"
    proc = lit_gan("--trainer.max_epochs=3", f"--trainer.default_root_dir={run_dir}", code=SLOW_SAVE)
    ckpts = run_dir / "checkpoints"
    wait_for(ckpts / "last.ckpt", proc)  # epoch 0 saved
    deadline = time.monotonic() + 300
    while not list(ckpts.glob(".last.ckpt.*.tmp")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # epoch 1's save has begun
    proc.kill()
    proc.wait()
    ok = readable(ckpts / "last.ckpt")
    code, _ = run("--trainer.max_epochs=3", f"--trainer.default_root_dir={run_dir}", f"--ckpt_path={ckpts / 'last.ckpt'}")
    exact = code == 0 and same(state(ckpts / "last.ckpt"), reference)
    return (f"SIGKILL mid-write: previous last.ckpt {'readable' if ok else 'BROKEN'}; resumed run "
            f"{'equals' if exact else 'DIFFERS FROM'} the uninterrupted one"), "none" if ok and exact else "LOST"


def kills_at_random_points(root: Path, reference: dict, kills: int) -> tuple[str, str]:
    rng, resumable = random.Random(0), 0
    for i in range(kills):
        run_dir = root / f"kill-{i}"
        proc = lit_gan("--trainer.max_epochs=3", f"--trainer.default_root_dir={run_dir}")
        wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.kill()
        proc.wait()
        last = run_dir / "checkpoints" / "last.ckpt"
        code, _ = run("--trainer.max_epochs=3", f"--trainer.default_root_dir={run_dir}", f"--ckpt_path={last}")
        resumable += readable(last) and code == 0 and same(state(last), reference) and steps_logged_once(run_dir)
    return (f"{resumable}/{kills} SIGKILLs at random points resumed to the uninterrupted weights, each step "
            "logged once in metrics.csv"), "none" if resumable == kills else "LOST"


def signal_mid_epoch(root: Path, reference: dict, signum: int, name: str, expected_code: int) -> tuple[str, str]:
    run_dir = root / name
    proc = lit_gan("--trainer.max_epochs=3", f"--trainer.default_root_dir={run_dir}")
    wait_for(run_dir / "samples" / "epoch_000.png", proc)
    time.sleep(0.3)  # in the middle of epoch 1
    proc.send_signal(signum)
    proc.communicate(timeout=300)
    last = run_dir / "checkpoints" / "last.ckpt"
    stopped = torch.load(last, map_location="cpu", weights_only=True)["batches_seen"] if readable(last) else -1
    code, _ = run("--trainer.max_epochs=3", f"--trainer.default_root_dir={run_dir}", f"--ckpt_path={last}")
    exact = code == 0 and same(state(last), reference)
    return (f"exit {proc.returncode} (want {expected_code}) after batch {stopped}; resumed run "
            f"{'equals' if exact else 'DIFFERS FROM'} the uninterrupted one"), "none" if exact and proc.returncode == expected_code else "LOST"


def concurrent_starts(root: Path, n: int = 4) -> tuple[str, str]:
    runs = root / "concurrent"
    procs = [lit_gan("--trainer.max_epochs=1", f"--runs_dir={runs}") for _ in range(n)]
    codes = [p.communicate(timeout=600) and p.returncode for p in procs]
    dirs = [d for d in runs.iterdir() if d.is_dir()]
    own = sum((d / "checkpoints" / "last.ckpt").is_file() for d in dirs)
    ok = codes == [0] * n and len(dirs) == n and own == n
    return f"{n} fits started together: {len(dirs)} run directories, {own} with their own last.ckpt", "none" if ok else "LOST"


def corrupt_checkpoints(root: Path, good: Path) -> tuple[str, str]:
    outcomes = []
    for name, data in (("truncated", good.read_bytes()[:4000]), ("random", os.urandom(5000)), ("empty", b"")):
        bad = root / f"{name}.ckpt"
        bad.write_bytes(data)
        code, out = run("--trainer.max_epochs=2", f"--ckpt_path={bad}", f"--runs_dir={root / 'corrupt'}")
        line = out.strip().splitlines()[-1] if out.strip() else ""
        outcomes.append(code == 2 and "not a readable lit_gan checkpoint" in line and "Traceback" not in out)
    return f"truncated / random / empty --ckpt_path: {sum(outcomes)}/3 refused with one line, exit 2", "none" if all(outcomes) else "FAILED"


def nan_injection(root: Path) -> tuple[str, str]:
    runs = root / "nan"
    code, out = run("--model=GAN", "--model.init_args.loss=wasserstein", "--model.init_args.opt_g.lr=1e30",
                    "--model.init_args.opt_d.lr=1e30", "--trainer.max_epochs=2", f"--runs_dir={runs}")
    ckpts = list(runs.rglob("*.ckpt"))
    finite = all(readable(c) for c in ckpts)
    said = "training diverged at batch" in out
    return (f"lr 1e30: exit {code}, {'one-line divergence message' if said else 'NO MESSAGE'}, "
            f"{len(ckpts)} checkpoint(s), {'all finite' if finite else 'NON-FINITE SAVED'}"), "none" if code == 1 and finite else "LOST"


def full_disk(root: Path) -> tuple[str, str]:
    run_dir = root / "full-disk"
    code, out = run("--trainer.max_epochs=2", f"--trainer.default_root_dir={run_dir}", code=FULL_DISK)
    last = run_dir / "checkpoints" / "last.ckpt"
    kept = readable(last)
    said = "no space left to write" in out and "MB" in out
    one = last_line(out).startswith("lit-gan: error: no space left") and "Traceback" not in out
    strays = stray_temporaries(run_dir, Path(tempfile.gettempdir()))
    lost = "LOST" if not kept or strays else "none" if one else "FAILED"
    return (f"ENOSPC halfway through a save: exit {code}, previous last.ckpt {'kept' if kept else 'BROKEN'}, "
            f"{'size named' if said else 'NO SIZE'}, {'one line' if one else 'NOT ONE LINE (or a traceback)'}, "
            f"{len(strays)} temporary file(s) left"), lost


def planted_cache_entry(root: Path) -> tuple[str, str]:
    from lit_gan.metrics import cache

    marker = root / "pwned"

    class RunsCode:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    entry = root / "cache" / "reference" / "planted.pt"
    entry.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"stats": RunsCode()}, entry)
    loaded = cache.load(entry)
    safe = loaded is None and not marker.exists()
    return f"pickled code in a shared cache: {'recomputed' if loaded is None else 'LOADED'}, code {'RAN' if marker.exists() else 'not run'}", "none" if safe else "FAILED"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=5, help="SIGKILLs at random points")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="lit_gan_faults_") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        code, _ = run("--trainer.max_epochs=3", f"--trainer.default_root_dir={root / 'reference'}")
        assert code == 0, "the uninterrupted reference run failed"
        good = root / "reference" / "checkpoints" / "last.ckpt"
        reference = state(good)
        cases = [
            ("SIGKILL during a checkpoint write", lambda: kill_during_checkpoint_write(root, reference)),
            ("SIGKILL at random points", lambda: kills_at_random_points(root, reference, a.kills)),
            ("SIGTERM mid-epoch", lambda: signal_mid_epoch(root, reference, signal.SIGTERM, "sigterm", 143)),
            ("Ctrl-C mid-epoch", lambda: signal_mid_epoch(root, reference, signal.SIGINT, "sigint", 1)),
            ("concurrent starts", lambda: concurrent_starts(root)),
            ("corrupt checkpoints", lambda: corrupt_checkpoints(root, good)),
            ("NaN injection", lambda: nan_injection(root)),
            ("disk full", lambda: full_disk(root)),
            ("planted cache entry", lambda: planted_cache_entry(root)),
        ]
        print("| case | outcome | data lost |\n|---|---|---|")
        for name, case in cases:
            outcome, lost = case()
            print(f"| {name} | {outcome} | {lost} |", flush=True)
        print(f"\n{len(cases)} cases in {time.perf_counter() - start:.0f} s; runs: DCGAN width 8, 3 epochs x 20 batches "
              f"of 16 embedded MNIST digits, torch {torch.__version__}")


if __name__ == "__main__":
    main()
