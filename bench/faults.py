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
        "--model.init_args.discriminator.init_args.width=8", "--model.init_args.latent.dim=16",
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
    code, out = run("--model=GAN", "--model.init_args.objective.loss=wasserstein", "--model.init_args.opt_g.lr=1e30",
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


def planted_checkpoint(root: Path, reference_run: Path) -> tuple[str, str]:
    folder = root / "planted"
    folder.mkdir()
    marker = folder / "MARKER"
    checkpoint = torch.load(reference_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    evil, evil2 = folder / "evil.ckpt", folder / "evil2.ckpt"
    generator = checkpoint["hyper_parameters"]["generator"]
    checkpoint["hyper_parameters"]["generator"] = {"class_path": "os.system", "init_args": {"command": f"touch {marker}"}}
    torch.save(checkpoint, evil)
    checkpoint["hyper_parameters"]["generator"] = generator
    checkpoint["hyper_parameters"]["_class_path"] = "this.Zen"  # importing `this` prints the Zen of Python
    torch.save(checkpoint, evil2)
    config, runs = str(reference_run / "config.yaml"), f"--runs_dir={folder / 'runs'}"
    results = [command("validate", "--config", config, "--ckpt_path", str(evil), runs),
               command("fit", "--config", config, "--ckpt_path", str(evil), runs, "--trainer.max_epochs=4"),
               command("generate", "samples", "--checkpoint", str(evil2), "--out", str(folder / "generated"))]
    ok = sum(refused(code, out) for code, out in results)
    imported = any("Beautiful is better" in out for _, out in results)
    safe = ok == 3 and not marker.exists() and not imported
    return (f"os.system in validate / fit, this.Zen in generate: {ok}/3 refused in one line, marker "
            f"{'CREATED' if marker.exists() else 'not created'}, this {'IMPORTED' if imported else 'not imported'}"), \
        "none" if safe else "FAILED"


def new_run_from_old_config(root: Path, reference_run: Path) -> tuple[str, str]:
    before = listing(reference_run)
    short = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2"]
    config = ["--config", str(reference_run / "config.yaml")]
    b, runs = root / "from-config" / "B", root / "from-config" / "runs"
    code_b, _ = command("fit", *config, *short, f"--trainer.default_root_dir={b}")
    code_r, _ = command("fit", *config, *short, f"--runs_dir={runs}")
    new = [d for d in runs.iterdir() if d.is_dir()] if runs.is_dir() else []
    own = sum((d / "checkpoints" / "last.ckpt").is_file() for d in [b, *new])
    untouched = listing(reference_run) == before
    ok = untouched and code_b == code_r == 0 and len(new) == 1 and own == 2
    return (f"fit --config A/config.yaml with --trainer.default_root_dir B / with --runs_dir: exit {code_b} / {code_r}, "
            f"{own}/2 new runs with their own last.ckpt, A's folder {'unchanged (last.ckpt bytes too)' if untouched else 'CHANGED'}"), \
        "none" if ok else "LOST" if not untouched else "FAILED"


def resume_on_other_data(root: Path, reference_run: Path) -> tuple[str, str]:
    last = reference_run / "checkpoints" / "last.ckpt"
    before = listing(reference_run)
    empty = root / "other-data"
    empty.mkdir()
    resume = ["fit", "--config", str(reference_run / "config.yaml"), "--ckpt_path", str(last), "--trainer.max_epochs=4"]
    results = [command(*resume, "--data.init_args.image_size", "32"),
               command(*resume, "--data", "FashionMNIST", "--data.init_args.data_dir", str(empty))]
    ok = sum(refused(code, out) for code, out in results)
    untouched = listing(reference_run) == before
    return (f"--ckpt_path of an EmbeddedMNIST run with image_size 32 / with FashionMNIST: {ok}/2 refused in one line "
            f"(exit 2), A's last.ckpt {'unchanged' if untouched else 'CHANGED'}"), \
        "none" if untouched and ok == 2 else "LOST" if not untouched else "FAILED"


def huge_generate(root: Path, good: Path) -> tuple[str, str]:
    folder = root / "generate"
    folder.mkdir()
    shape = torch.load(good, map_location="cpu", weights_only=True)["hyper_parameters"]["image_shape"]
    per_image = int(torch.tensor(shape).prod())
    free = shutil.disk_usage(folder).free
    num = max(100_000_000, 2 * free // per_image + 1)  # always more than the disk holds: refused, never drawn
    huge, small = folder / "huge", folder / "small"
    generate = ["generate", "samples", "--checkpoint", str(good), "--format", "pt"]
    code, out, base_rss = peak_rss(*generate, "--num", str(num), "--out", str(huge), timeout=120)
    said = refused(code, out) and "disk" in last_line(out) and "free" in last_line(out)
    untouched = not huge.exists()
    shutil.rmtree(huge, ignore_errors=True)  # whatever a run that was not refused left
    n = 200_000
    code_s, out_s, rss = peak_rss(*generate, "--num", str(n), "--out", str(small), timeout=540)
    size = n * per_image
    try:
        complete = code_s == 0 and tuple(torch.load(small / "samples.pt", mmap=True, weights_only=True)["images"].shape) == (n, *shape)
    except Exception:  # noqa: BLE001
        complete = False
    shutil.rmtree(small, ignore_errors=True)
    bounded = complete and rss - base_rss < size / 1e6 / 2
    return (f"--num {num:,} ({num * per_image / 1e9:.0f} GB; {free / 1e9:.0f} GB free): "
            f"{'refused in one line naming the space' if said else 'NOT REFUSED IN ONE LINE'}, "
            f"{'nothing written' if untouched else 'FILES WRITTEN'}; --num {n:,} as pt ({size / 1e6:.0f} MB): "
            f"{'complete' if complete else f'INCOMPLETE (exit {code_s})'}, peak RSS {rss:.0f} MB, "
            f"{rss - base_rss:+.0f} MB over the refused run's {base_rss:.0f} MB"), \
        "none" if said and untouched and bounded else "FAILED"


def prepare_args(out: Path) -> list[str]:
    return ["prepare", "--data", "EmbeddedMNIST", "--out", str(out)]


def fit_prepared(root: Path, path: Path) -> tuple[int, str]:
    model = [a for a in TINY if not a.startswith("--data")]
    return command("fit", *model, "--data=Prepared", f"--data.init_args.path={path}", "--data.init_args.batch_size=16",
                   "--trainer.max_epochs=1", f"--runs_dir={root / 'prepared' / 'runs'}")


def prepared_concurrent(root: Path) -> tuple[str, str]:
    from lit_gan.data import Prepared

    out = root / "prepared" / "base"
    procs = [cli(*prepare_args(out), code=SLOW_PREPARE) for _ in range(2)]
    results = [(p.communicate(timeout=600)[0], p.returncode) for p in procs]
    codes = sorted(code for _, code in results)
    loser = next((o for o, code in results if code != 0), "")
    busy = refused(2, loser) and "another `lit-gan prepare`" in last_line(loser) and "is writing to" in last_line(loser)
    try:
        data = Prepared(path=str(out))
        data.setup("fit")
        readable = len(data.train_set) + len(data.val_set) == 5000  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001
        readable = False
    said = "says another prepare is writing" if busy else f"SAYS: {last_line(loser)[:120]!r}"
    return (f"two prepares into one --out started together: exit {codes[0]} and {codes[1]}, the other {said}; "
            f"the folder {'is whole (5,000 images)' if readable else 'is BROKEN'}"), \
        "none" if readable and codes == [0, 2] and busy else "LOST" if not readable else "FAILED"


def prepared_broken(root: Path) -> tuple[str, str]:
    base = root / "prepared" / "base"
    if not (base / "record.json").is_file():
        assert command(*prepare_args(base))[0] == 0, "lit-gan prepare failed"
    outcomes = []
    for name in ("truncated", "num_classes", "count"):
        copy = root / "prepared" / name
        shutil.copytree(base, copy)
        record = json.loads((copy / "record.json").read_text())
        if name == "truncated":
            images = copy / "train" / "images.npy"
            os.truncate(images, images.stat().st_size - 784 * 100)
            named = str(images)
        elif name == "num_classes":
            record["num_classes"] = 5
            named = str(copy / "train" / "labels.npy")
        else:
            record["splits"]["train"] -= 500
            named = str(copy / "train" / "images.npy")
        (copy / "record.json").write_text(json.dumps(record))
        code, out = fit_prepared(root, copy)
        outcomes.append(refused(code, out) and named in last_line(out))
    return (f"train/images.npy truncated / record.json num_classes 10 -> 5 / train count -500: {sum(outcomes)}/3 "
            "refused before training in one line naming the file"), "none" if all(outcomes) else "FAILED"


def prepared_full_disk(root: Path) -> tuple[str, str]:
    disk = root / "prepared" / "tmpfs"
    disk.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode == 0
    try:
        out = disk / "p"
        if mounted:  # a real 1 MiB disk: refused up front; with the free-space check fooled, ENOSPC while reserving
            kind = "1 MiB tmpfs"
            results = [command(*prepare_args(out)), command(*prepare_args(out), code=disk_script(1 << 40))]
        else:  # no mount allowed: a disk that says 1 MiB free, then one that says 1 TiB but fails every allocation
            kind = "simulated 1 MiB disk (no tmpfs mount allowed)"
            results = [command(*prepare_args(out), code=disk_script(1 << 20)),
                       command(*prepare_args(out), code=disk_script(1 << 40, enospc=True))]
        left = sorted(p.name for p in disk.iterdir())
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=False)
    ok = sum(refused(code, o) and last_line(o).startswith("lit-gan: error: no space left") for code, o in results)
    bus = any("Bus error" in o or code == -signal.SIGBUS for code, o in results)
    return (f"{kind}, free-space check / check fooled: {ok}/2 stopped in one line 'no space left', "
            f"{'A BUS ERROR' if bus else 'no bus error'}, {len(left)} file(s) left on the disk"), \
        "none" if ok == 2 and not bus and not left else "FAILED"


def sixteen_bit_images(root: Path) -> tuple[str, str]:
    import numpy as np
    from PIL import Image

    from lit_gan.data import ImageFolder
    from lit_gan.data.base import read_image

    folder = root / "sixteen-bit"
    folder.mkdir()
    values = [0, 257, 32768, 65535]
    for i, v in enumerate(values * 2):
        Image.fromarray(np.full((4, 4), v, dtype=np.uint16)).save(folder / f"{i}.png")
    want = [round(v * 255 / 65535) for v in values]
    read = [int(np.asarray(read_image(folder / f"{i}.png", "L")).max()) for i in range(len(values))]
    with Image.open(folder / "0.png") as image:
        mode = image.mode
    plain = []
    for i in range(len(values)):
        with Image.open(folder / f"{i}.png") as image:
            plain.append(int(np.asarray(image.convert("L")).max()))
    data = ImageFolder(root=str(folder), image_size=4, channels=1, in_memory=True, val_fraction=0.25)
    data.setup("fit")
    held = sorted({int(v) for split in (data.train_set, data.val_set) for i in range(len(split)) for v in split[i][0].unique()})
    ok = read == want and held == sorted(want)
    show = "/".join
    return (f"{mode} PNGs of {show(map(str, values))}: read_image gives {show(map(str, read))} (PIL's convert alone: "
            f"{show(map(str, plain))}), ImageFolder holds {show(map(str, held))}"), "none" if ok else "LOST"


def sigterm_during_classifier(root: Path, reference_run: Path) -> tuple[str, str]:
    run_dir = root / "validate-run"
    shutil.copytree(reference_run, run_dir)
    cache = root / "empty-cache"
    cache.mkdir()
    proc = cli("validate", "--config", str(run_dir / "config.yaml"), "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"),
               "--trainer.limit_val_batches=2", "--evaluation.classifier_steps=1499",  # not the one shipped for 1500
               env={**ENV, "LIT_GAN_CACHE": str(cache)})
    lines: list[str] = []
    training = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "Training the" in line and "classifier" in line:
                training.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started = training.wait(180)
    time.sleep(3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    seconds = time.monotonic() - sent
    reader.join(10)
    out = "".join(lines)
    said = last_line(out).startswith("lit-gan: stopped by SIGTERM") and "Traceback" not in out
    cached = list(cache.rglob("*.pt"))
    ok = started and proc.returncode == 143 and seconds < 10 and said and not cached
    return (f"SIGTERM 3 s into `validate`'s classifier training (1,499 steps, empty cache)"
            f"{'' if started else ' (IT NEVER STARTED)'}: exit {proc.returncode} "
            f"(want 143) {seconds:.1f} s after the signal, {'one line' if said else 'NOT ONE LINE'}, "
            f"{len(cached)} classifier(s) cached"), "none" if ok else "FAILED"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=5, help="SIGKILLs at random points")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only the cases whose names contain one of these")
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
            ("planted checkpoint", lambda: planted_checkpoint(root, root / "reference")),
            ("new run from an old run's config", lambda: new_run_from_old_config(root, root / "reference")),
            ("resume on other data", lambda: resume_on_other_data(root, root / "reference")),
            ("huge generate", lambda: huge_generate(root, good)),
            ("prepared: two prepares at once", lambda: prepared_concurrent(root)),
            ("prepared: broken files", lambda: prepared_broken(root)),
            ("prepared: full disk", lambda: prepared_full_disk(root)),
            ("16-bit images", lambda: sixteen_bit_images(root)),
            ("SIGTERM while the classifier trains", lambda: sigterm_during_classifier(root, root / "reference")),
        ]
        if a.only:
            cases = [(name, case) for name, case in cases if any(word.lower() in name.lower() for word in a.only)]
        print("| case | outcome | data lost |\n|---|---|---|")
        for name, case in cases:
            outcome, lost = case()
            print(f"| {name} | {outcome} | {lost} |", flush=True)
        print(f"\n{len(cases)} cases in {time.perf_counter() - start:.0f} s; runs: DCGAN width 8, 3 epochs x 20 batches "
              f"of 16 embedded MNIST digits, torch {torch.__version__}")


if __name__ == "__main__":
    main()
