"""Images/s delivered by each way of feeding a folder of JPEGs: lazy, in memory, prepared, LitData.

A CelebA-shaped folder (``--n`` RGB JPEGs of 178x218 px, quality 90, flat like
``img_align_celeba/``) is built once in ``--work`` from Fashion-MNIST on this machine: each image
is four seeded garments, upscaled into a 2x2 grid and tinted on a tinted background, with mild
noise. Each row then iterates lit_gan's train dataloader at ``--size`` px and ``--batch-size``
(``ImageFolder``'s resize of the shorter side + center crop, 90% of the images), after
``--warmup`` batches: ``--batches`` batches for the lazy folder, whole epochs for the fast paths,
``--repeats`` (lazy) or ``--fast-repeats`` times; the median is reported. Rows: the lazy folder with 0 workers (the old
default) and 2 (the new automatic default on 2 CPUs), the folder in memory, the prepared folder
(``lit_gan.data.prepared.prepare`` with 2 threads, then ``Prepared``), and LitData (the same uint8
arrays written by ``litdata.optimize``, read by ``StreamingDataset(shuffle=True)`` +
``StreamingDataLoader`` with 0 and 2 workers; skipped when litdata is not installed).
Prepared and LitData data are read back just after being written: the page cache is warm.

Run:  PYTHONPATH=. python bench/data.py [--n 20000 --work /tmp/lit_gan_bench_data --batches 100 --repeats 3 --fast-repeats 10]
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lit_gan.data import FashionMNIST, ImageFolder, Prepared
from lit_gan.data.prepared import prepare

WIDTH, HEIGHT = 178, 218  # CelebA's aligned crops
RESULTS = Path(__file__).parent / "results" / "data.md"


# ------------------------------------------------------------------------- the folder
def build_folder(work: Path, n: int, threads: int) -> Path:
    """``work/celeba_like``: n JPEGs 000000.jpg ...; reused when complete and of the same n."""
    folder = work / "celeba_like"
    marker = folder / ".complete.json"
    spec = {"n": n, "size": [WIDTH, HEIGHT], "quality": 90, "version": 1}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        print(f"reusing {folder} ({n} JPEGs)", flush=True)
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    partial = work / "celeba_like.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    fashion = FashionMNIST(data_dir=str(work), download=False)
    fashion.setup()
    garments = fashion.train_set.images[:, 0].numpy()  # (60000, 28, 28) uint8
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for done, _ in enumerate(pool.map(functools.partial(_write_image, partial, garments), range(n)), 1):
            if done % 5000 == 0:
                print(f"  {done}/{n} JPEGs", flush=True)
    (partial / ".complete.json").write_text(json.dumps(spec))
    os.replace(partial, folder)
    print(f"built {folder}: {n} JPEGs {WIDTH}x{HEIGHT} in {time.perf_counter() - start:.0f} s", flush=True)
    return folder


def _write_image(folder: Path, garments: np.ndarray, i: int) -> None:
    rng = np.random.default_rng(i)
    cell_w, cell_h = WIDTH // 2, HEIGHT // 2
    canvas = np.empty((HEIGHT, WIDTH, 3), dtype=np.float32)
    canvas[:] = rng.uniform(120, 255, size=3)  # background tint
    for k, index in enumerate(rng.integers(0, len(garments), size=4)):
        tile = Image.fromarray(garments[index]).resize((cell_w, cell_h), Image.BILINEAR)
        alpha = np.asarray(tile, dtype=np.float32)[..., None] / 255.0
        y, x = (k // 2) * cell_h, (k % 2) * cell_w
        cell = canvas[y:y + cell_h, x:x + cell_w]
        cell[:] = cell * (1 - alpha) + rng.uniform(0, 255, size=3) * alpha
    canvas += rng.normal(0, 6, size=canvas.shape)
    image = Image.fromarray(canvas.clip(0, 255).astype(np.uint8), "RGB")
    image.save(folder / f"{i:06d}.jpg", quality=90)


# ------------------------------------------------------------------------- measuring
def busy_cpus(seconds: float = 1.0) -> float:
    """CPUs busy (all processes) over ``seconds``, from /proc/stat."""
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields[:8]) - idle, sum(fields[:8])
    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)


def wait_idle(limit: float, timeout: float) -> float:
    """Wait (up to ``timeout`` s) until the other processes use fewer than ``limit`` CPUs; return the last reading."""
    deadline = time.monotonic() + timeout
    busy = busy_cpus()
    while busy > limit and time.monotonic() < deadline:
        print(f"  waiting: {busy:.2f} CPUs busy elsewhere", flush=True)
        time.sleep(5)
        busy = busy_cpus()
    return busy


def rate(loader: Iterable, batch_size: int, warmup: int, batches: int | None, repeats: int) -> float:
    """Median images/s over ``repeats`` passes, each a fresh iterator: ``warmup`` batches skipped,
    then ``batches`` batches timed (None: the rest of the epoch)."""
    rates = []
    for _ in range(repeats):
        it = iter(loader)
        for _ in range(warmup):
            next(it)
        count, start = 0, time.perf_counter()
        for images in it:
            count += len(images[0] if isinstance(images, (tuple, list)) else images["image"])
            if batches is not None and count >= batches * batch_size:
                break
        rates.append(count / (time.perf_counter() - start))
        del it
    return statistics.median(rates)


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def _litdata_items(images_path: str, labels_path: str, start: int, stop: int):
    images, labels = np.load(images_path, mmap_mode="r"), np.load(labels_path)
    for i in range(start, stop):
        yield {"image": np.ascontiguousarray(images[i]), "label": int(labels[i])}


# ------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/lit_gan_bench_data", help="folder of the JPEGs (kept) and the prepared data")
    parser.add_argument("--n", type=int, default=20_000, help="JPEGs in the folder")
    parser.add_argument("--size", type=int, default=64, help="image_size trained at")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=3, help="batches not timed at the start of each pass")
    parser.add_argument("--batches", type=int, default=100, help="batches timed per pass of the lazy folder")
    parser.add_argument("--repeats", type=int, default=3, help="passes per lazy-folder row (median reported)")
    parser.add_argument("--fast-repeats", type=int, default=10, help="epochs per row of the fast paths (median reported)")
    parser.add_argument("--idle", type=float, default=0.3, help="wait until fewer CPUs than this are busy before each row")
    parser.add_argument("--idle-timeout", type=float, default=300, help="seconds to wait for that at most")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cpus = len(os.sched_getaffinity(0))
    folder = build_folder(work, args.n, cpus)
    common = dict(root=str(folder), image_size=args.size, channels=3, batch_size=args.batch_size)
    bs, rows, notes, loads = args.batch_size, [], [], []

    def row(path: str, workers: int, loader: Iterable, fast: bool, note: str = "") -> None:
        busy = wait_idle(args.idle, args.idle_timeout)
        loads.append(os.getloadavg()[0])
        value = rate(loader, bs, args.warmup, None if fast else args.batches, args.fast_repeats if fast else args.repeats)
        rows.append((path, workers, value, f"{note}; {busy:.2f} CPUs busy before".lstrip("; ")))
        print(f"  {path}, {workers} workers: {value:,.0f} images/s", flush=True)

    # lazy folder: 0 workers (the old default), then the automatic default
    for workers in (0, None):
        data = ImageFolder(**common, in_memory=False, num_workers=workers)
        loader = data.train_dataloader()
        row("lazy folder", loader.num_workers, loader, fast=False,
            note="old default" if workers == 0 else "new auto default")
        del loader, data

    # in memory
    wait_idle(args.idle, args.idle_timeout)
    data = ImageFolder(**common, in_memory=True)
    start = time.perf_counter()
    data.setup("fit")
    load_s = time.perf_counter() - start
    loader = data.train_dataloader()
    row("in memory", loader.num_workers, loader, fast=True, note=f"load {load_s:.1f} s ({cpus} threads)")
    del loader, data

    # prepared
    out = work / f"prepared{args.size}"
    for stale in (out, out.with_name(out.name + ".partial")):
        shutil.rmtree(stale, ignore_errors=True)
    wait_idle(args.idle, args.idle_timeout)
    start = time.perf_counter()
    prepare(ImageFolder(**common, in_memory=False), out, workers=2)
    prepare_s = time.perf_counter() - start
    size = disk_bytes(out)
    notes.append(f"prepare (`prepare(ImageFolder(...), out, workers=2)`, {args.n:,} JPEGs, all splits): "
                 f"{prepare_s:.1f} s = {args.n / prepare_s:,.0f} images/s; on disk {size / 2**20:,.0f} MiB")
    data = Prepared(path=str(out), batch_size=bs)
    loader = data.train_dataloader()
    row("prepared (local)", loader.num_workers, loader, fast=True, note="memory map, page cache warm")
    del loader, data

    # LitData
    try:
        import litdata
    except ImportError:
        litdata = None
        notes.append("LitData: not installed (`pip install litdata`), rows skipped")
        print("litdata is not installed: skipping the LitData rows", flush=True)
    if litdata is not None:
        lit_out = work / f"litdata{args.size}"
        shutil.rmtree(lit_out, ignore_errors=True)
        train = out / "train"
        n_train = len(np.load(train / "labels.npy"))
        inputs = [(s, min(s + 1024, n_train)) for s in range(0, n_train, 1024)]
        wait_idle(args.idle, args.idle_timeout)
        start = time.perf_counter()
        litdata.optimize(
            fn=functools.partial(_lit_block, str(train / "images.npy"), str(train / "labels.npy")),
            inputs=inputs, output_dir=str(lit_out), chunk_bytes="64MB", num_workers=2, verbose=False,
        )
        lit_s = time.perf_counter() - start
        notes.append(f"LitData write (`litdata.optimize`, raw uint8 arrays, chunk_bytes 64MB, 2 workers, train split "
                     f"{n_train:,} images from the prepared arrays, no decoding): {lit_s:.1f} s; on disk "
                     f"{disk_bytes(lit_out) / 2**20:,.0f} MiB; version {litdata.__version__}")
        for workers in (0, 2):
            dataset = litdata.StreamingDataset(str(lit_out), shuffle=True)
            loader = litdata.StreamingDataLoader(dataset, batch_size=bs, num_workers=workers)
            row("LitData (local)", workers, loader, fast=True, note="StreamingDataset(shuffle=True), page cache warm")
            del loader, dataset

    base = rows[0][2]
    table = ["| path | workers | images/s | × lazy default | notes |", "|---|---:|---:|---:|---|"]
    table += [f"| {p} | {w} | {v:,.0f} | {v / base:.1f} | {note} |" for p, w, v, note in rows]
    text = "\n".join(table) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    print("\n" + text)

    cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.processor())
    command = "PYTHONPATH=. python bench/data.py " + shlex.join(sys.argv[1:])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        f"# Data loading: images/s at {args.size} px, batch {bs}\n\n"
        f"`{command.strip()}`\n\n"
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {cpu_model}, {cpus} cores, "
        f"torch {torch.__version__}, Python {platform.python_version()}; load average (1 min) at the start of "
        f"each row: {', '.join(f'{x:.2f}' for x in loads)}.\n\n"
        f"{args.n:,} JPEGs {WIDTH}x{HEIGHT} (quality 90) built from Fashion-MNIST; train split 90% of them;"
        f" each row: {args.warmup} warm-up batches, then {args.batches} batches (lazy folder) or the rest of "
        f"the epoch, {args.repeats} passes (lazy) or {args.fast_repeats} epochs (the others), median. \"CPUs busy "
        f"before\": all processes, measured over 1 s just before the row (each row waits for fewer than "
        f"{args.idle:g}); the load averages include this benchmark's own work in the rows before.\n\n" + text
    )
    print(f"wrote {RESULTS}")


def _lit_block(images_path: str, labels_path: str, block: tuple[int, int]):
    yield from _litdata_items(images_path, labels_path, *block)


if __name__ == "__main__":
    main()
