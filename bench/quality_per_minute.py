"""Quality per CPU-minute: FID & co. of configs trained for fixed budgets of one-core CPU time.

Every row is a real `lit-gan fit` of a config (plus its own overrides) on the full Fashion-MNIST,
pinned to one core (`taskset`, OMP_NUM_THREADS=1), with no evaluation during training. The budget
is the training process's CPU time (`lit_gan.callbacks.Budget`, `time.process_time`), so rows
compare on a machine shared with other work. One run per row serves every budget: it trains to
the largest and saves `budget-<m>min.ckpt` as it crosses each smaller one. Runs go `--jobs` at a
time, one per core, in row order (round-robin over the cores), so machine noise hits all alike.

Each checkpoint is then scored with `--num-fake` samples against the 10,000 test images in the
features of one Fashion-MNIST classifier trained once (fixed settings below) and kept in the
output folder: FID, KID, IS, classes covered, precision/recall. Writes `<out>/quality_per_minute.md`
(table + protocol) and `.png` (FID against CPU-minutes); runs, scores and the classifier live in
`<out>/quality_per_minute/`: finished runs are reused, stopped ones (Ctrl-C, SIGTERM, a crash) resume
from their last.ckpt with the CPU time already spent, so an interrupted benchmark can be continued.

    PYTHONPATH=. python bench/quality_per_minute.py                      # the default rows, 2/5/10 min
    PYTHONPATH=. python bench/quality_per_minute.py --quick              # smoke run: seconds, 500 samples
    PYTHONPATH=. python bench/quality_per_minute.py --budgets 2 5 10 --configs \\
        dcgan=configs/fashion_mnist/dcgan.yaml "r3gan=configs/fashion_mnist/r3gan.yaml --data.init_args.batch_size 64"

A row is `[label=]config [lit-gan overrides...]` (one shell word; the label defaults to the file name).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BASE = "configs/fashion_mnist/dcgan.yaml"
SPEED = "--trainer.callbacks+=lit_gan.callbacks.Speed --trainer.callbacks.{}=true"
DEFAULT_ROWS = [
    f"dcgan={BASE}",
    f"dcgan+bf16={BASE} --trainer.precision bf16-mixed",
    f"dcgan+channels_last={BASE} {SPEED.format('channels_last')}",
    f"dcgan+compile={BASE} {SPEED.format('compile')}",
    f"dcgan-batch64-lr2e-3={BASE} --data.init_args.batch_size 64 "
    "--model.init_args.opt_g.lr 2e-3 --model.init_args.opt_d.lr 2e-3",
]
CLASSIFIER = dict(width=32, lr=3e-3, epochs=5, batch_size=128, seed=0)
"""The fixed feature network's training settings (lit_gan.metrics.classifier.load_or_train)."""


@dataclass(frozen=True)
class Row:
    label: str
    config: str
    args: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Row:
        """`[label=]config [overrides...]`."""
        words = shlex.split(text)
        if not words:
            raise ValueError("an empty row; give `[label=]config [overrides...]`")
        label, _, config = words[0].rpartition("=")
        if not Path(config).is_file() and not (REPO / config).is_file():
            raise ValueError(f"row {text!r}: no config file {config}")
        return cls(label or Path(config).stem, config, tuple(words[1:]))

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in "._+-=" else "_" for c in self.label)


def run_dir_of(runs: Path, row: Row, seed: int) -> Path:
    """`<runs>/<label>/seed-<seed>`."""
    return runs / row.slug / f"seed-{seed}"


def fit_command(row: Row, run_dir: Path, budgets: list[float], seed: int) -> list[str]:
    """The `lit-gan fit` arguments of a row: its config and overrides, a CPU budget with snapshots,
    no validation or evaluation, one thread's worth of data loading in the process itself."""
    return [
        sys.executable, "-m", "lit_gan", "fit", "--config", row.config, *row.args,
        "--seed_everything", str(seed), "--trainer.max_epochs", "100000", "--trainer.limit_val_batches", "0",
        "--evaluation.every_n_epochs", "0", "--data.init_args.num_workers", "0",
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run_dir),
        "--trainer.callbacks+=lit_gan.callbacks.Budget", f"--trainer.callbacks.minutes={max(budgets):g}",
        f"--trainer.callbacks.snapshots=[{','.join(f'{b:g}' for b in budgets)}]",
    ]


def snapshots(run_dir: Path, budgets: list[float]) -> dict[float, Path]:
    return {b: run_dir / "checkpoints" / f"budget-{b:g}min.ckpt" for b in budgets}


def train(rows: list[Row], seeds: list[int], budgets: list[float], runs: Path, cores: list[int]) -> None:
    """Every row's run of every seed, `len(cores)` at a time, each pinned to a free core, seed by seed
    in row order. A finished run asked for a larger budget resumes from its last.ckpt up to it."""
    free: Queue[int] = Queue()
    for core in cores:
        free.put(core)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "offline",
           "WANDB_SILENT": "true", "TORCHINDUCTOR_COMPILE_THREADS": "1",  # compilation is counted: in-process
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def run(job: tuple[int, Row]) -> None:
        seed, row = job
        run_dir = run_dir_of(runs, row, seed)
        if all(p.is_file() for p in snapshots(run_dir, budgets).values()):
            print(f"[{row.label} seed {seed}] reusing {run_dir}", flush=True)
            return
        last = run_dir / "checkpoints" / "last.ckpt"
        resume = ["--ckpt_path", str(last)] if last.is_file() else []  # the budget spent carries over
        if not resume:
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True)
        core = free.get()
        try:
            command = ["taskset", "-c", str(core), *fit_command(row, run_dir, budgets, seed), *resume]
            with open(run_dir / "command.txt", "a") as file:
                file.write(shlex.join(command) + "\n")
            print(f"[{row.label} seed {seed}] {'resuming' if resume else 'training'} on core {core}: {shlex.join(command[4:])}", flush=True)
            start = time.perf_counter()
            with open(run_dir / "train.log", "a") as log:
                code = subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
            print(f"[{row.label} seed {seed}] finished in {(time.perf_counter() - start) / 60:.1f} wall-clock min, exit {code}", flush=True)
            if code != 0:
                print((run_dir / "train.log").read_text()[-3000:], file=sys.stderr)
        finally:
            free.put(core)

    with ThreadPoolExecutor(len(cores)) as pool:
        list(pool.map(run, [(seed, row) for seed in seeds for row in rows]))


def load_generator(path: Path) -> Any:
    """The checkpoint's model, of the class it was trained as."""
    import torch

    from lit_gan.models import GAN

    hparams = torch.load(path, map_location="cpu", weights_only=True)["hyper_parameters"]
    module, _, name = str(hparams.get("_class_path", "lit_gan.models.GAN")).rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return (cls if issubclass(cls, GAN) else GAN).load_from_checkpoint(path).eval()


def feature_network(work: Path, classifier_epochs: int) -> tuple[Any, Any, dict]:
    """Fashion-MNIST, its fixed classifier (trained the first time, cached in `<work>/cache`) and its record."""
    from lit_gan.data import FashionMNIST
    from lit_gan.metrics import ClassifierExtractor
    from lit_gan.metrics.classifier import load_or_train

    data = FashionMNIST(data_dir=str(REPO / "data"), download=False)
    data.prepare_data()
    data.setup("fit")
    net, record = load_or_train(data, work / "cache", **{**CLASSIFIER, "epochs": classifier_epochs})
    return data, ClassifierExtractor(net), record


def score(rows: list[Row], seeds: list[int], budgets: list[float], work: Path, num_fake: int, data: Any, extractor: Any,
          record: dict) -> list[dict]:
    """Metrics of every snapshot (cached in `<work>/scores.json` by checkpoint and protocol)."""
    import torch

    from lit_gan.metrics import Settings, evaluate

    settings = Settings(num_fake=num_fake, num_real=None, real_split="test", seed=0, cache_dir=str(work / "cache"))
    cached_path = work / "scores.json"
    cached = json.loads(cached_path.read_text()) if cached_path.is_file() else {}
    out = []
    for row in rows:
        for seed, (budget, path) in ((s, item) for s in seeds for item in snapshots(run_dir_of(work / "runs", row, s), budgets).items()):
            if not path.is_file():
                print(f"[{row.label} seed {seed}] no checkpoint at {budget:g} min ({path}): the run failed or stopped early", file=sys.stderr)
                continue
            key = f"{path}|{path.stat().st_mtime_ns}|{extractor.key}|{num_fake}"
            if key not in cached:
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
                report = evaluate(load_generator(path), data, extractor, settings, extractor, record)
                cached[key] = {"budget": checkpoint["budget"], "metrics": report.metrics, "protocol": report.protocol}
                save_scores(cached_path, {key: cached[key]})
                print(f"[{row.label} seed {seed}] {budget:g} min: FID {report.metrics['fid']:.3f}", flush=True)
            out.append({"label": row.label, "seed": seed, "minutes": budget, **cached[key]})
    return out


def save_scores(path: Path, new: dict[str, Any]) -> None:
    """Adds `new` to the score cache, keeping what other benchmark processes wrote there meanwhile
    (re-read, merged and replaced atomically: a reader never sees half a file)."""
    merged = {**(json.loads(path.read_text()) if path.is_file() else {}), **new}
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(merged, indent=1))
    os.replace(partial, path)


def table(results: list[dict]) -> str:
    """One line per row and budget: the mean over its seeds, FID with its range (min-max) when there are several."""
    lines = ["| config | CPU-min | seeds | batches | images/s | FID | FID range | KID | IS | classes | precision | recall |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in results:
        groups.setdefault((r["label"], r["minutes"]), []).append(r)
    for (label, minutes), runs in groups.items():
        def mean(key: str, of: str = "metrics") -> float:
            return statistics.fmean(r[of][key] for r in runs)
        fids = sorted(r["metrics"]["fid"] for r in runs)
        spread = f"{fids[0]:.3f}-{fids[-1]:.3f}" if len(fids) > 1 else "-"
        rate = statistics.fmean(r["budget"]["images"] / r["budget"]["seconds"] for r in runs)
        lines.append(f"| {label} | {minutes:g} | {len(runs)} | {mean('batches', 'budget'):,.0f} | {rate:.0f} | "
                     f"{mean('fid'):.3f} | {spread} | {mean('kid_mean'):.4f} | {mean('is_mean'):.2f} | "
                     f"{mean('classes_covered'):.0f} | {mean('precision'):.3f} | {mean('recall'):.3f} |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label in dict.fromkeys(r["label"] for r in results):
        fids: dict[float, list[float]] = {}
        for r in results:
            if r["label"] == label:
                fids.setdefault(r["minutes"], []).append(r["metrics"]["fid"])
        minutes = sorted(fids)
        line, = ax.plot(minutes, [statistics.fmean(fids[m]) for m in minutes], marker="o", label=label)
        if any(len(v) > 1 for v in fids.values()):  # the seeds' range
            ax.fill_between(minutes, [min(fids[m]) for m in minutes], [max(fids[m]) for m in minutes],
                            color=line.get_color(), alpha=0.2)
    ax.set(xlabel="training CPU-minutes (one core)", ylabel="FID (classifier features, lower is better)",
           yscale="log", title="Fashion-MNIST: quality per CPU-minute")
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def protocol(args: argparse.Namespace, rows: list[Row], record: dict, results: list[dict], load: tuple[float, float]) -> str:
    import torch

    from lit_gan.hardware import cpu_features

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    p = results[0]["protocol"] if results else {}
    commands = "\n".join(f"- {r.label}: `{shlex.join(['--config', r.config, *r.args])}`" for r in rows)
    settings = ", ".join(f"{k} {v}" for k, v in {**CLASSIFIER, "epochs": record.get("epochs")}.items())
    return f"""**Protocol.** Full Fashion-MNIST (60,000 training images), seeds {', '.join(map(str, args.seeds))}. Each row is one
`lit-gan fit` run pinned to one core (`taskset`, OMP_NUM_THREADS=1, DataLoader in-process,
TorchInductor compiling in-process), with no validation or evaluation during training, trained for
{max(args.budgets):g} minutes of its process's CPU time (`lit_gan.callbacks.Budget`, `time.process_time`;
start-up and data loading not counted) and snapshotted at {', '.join(f'{b:g}' for b in args.budgets)} CPU-minutes.
Runs go one per core (`--cores`, default both), in row order. images/s = training images / CPU seconds.
Each snapshot is scored with {args.num_fake:,} samples against the {p.get('num_real', '?'):,} images of the
{p.get('real_split', '?')} split in the features of one Fashion-MNIST classifier ({p.get('extractor', '?')}; trained
once with {settings}; test accuracy {record.get('test_accuracy', float('nan')):.4f}; file
`{shown(Path(record.get('path', '?')), args.out)}`):
FID and KID (100 subsets of 1,000) on its penultimate features, IS and classes covered (share >= 0.25x the
data's) from its logits, precision/recall with k=3. Measured on a 2-core machine shared with other jobs
(load average {load[0]:.1f} at the start, {load[1]:.1f} at the end); {cpu_features()}; torch {torch.__version__}, Python
{platform.python_version()}, commit {commit}, {time.strftime('%Y-%m-%d')}. This table:
`PYTHONPATH=. python bench/quality_per_minute.py {shlex.join(portable(args.argv))}`.

Rows:
{commands}"""


def shown(path: Path, out: Path) -> str:
    """`path` as the results file names it: relative to the repository or to `--out` (shown as OUT), never a machine's own folders."""
    for root, name in ((REPO, ""), (out.resolve(), "OUT/")):
        if path.resolve().is_relative_to(root):
            return name + path.resolve().relative_to(root).as_posix()
    return path.name


def portable(argv: list[str]) -> list[str]:
    """The command line with `--out`'s folder written as OUT, so the results file names no one machine's path."""
    shown_argv = list(argv)
    for i, word in enumerate(shown_argv):
        if word == "--out" and i + 1 < len(shown_argv):
            shown_argv[i + 1] = "OUT"
        elif word.startswith("--out="):
            shown_argv[i] = "--out=OUT"
    return shown_argv


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_ROWS, metavar="ROW",
                        help="rows: '[label=]config [lit-gan overrides...]' (one shell word each)")
    parser.add_argument("--budgets", nargs="+", type=float, default=[2, 5, 10], help="CPU-minutes")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="a run per row and seed (seed_everything)")
    parser.add_argument("--num-fake", type=int, default=10_000, help="generated samples per score")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder of the .md/.png results")
    parser.add_argument("--cores", nargs="+", type=int, default=sorted(os.sched_getaffinity(0))[:2],
                        help="cores to pin the runs to, one run per core at a time")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: budgets 0.05/0.1 min, 500 samples, a 1-epoch classifier, out in a temp folder")
    parser.add_argument("--score-only", action="store_true", help="score the existing runs, train nothing")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.quick:
        args.budgets, args.num_fake = [0.05, 0.1], 500
        if args.out == HERE / "results":
            args.out = Path(tempfile.gettempdir()) / "lit_gan_quality_per_minute_quick"
    if len(set(args.seeds)) < len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    if any(b <= 0 for b in args.budgets):
        parser.error(f"--budgets must be > 0 minutes, got {args.budgets}")
    args.budgets = sorted(set(args.budgets))
    try:
        rows = [Row.parse(text) for text in args.configs]
    except ValueError as error:
        parser.error(str(error))
    if len({r.slug for r in rows}) < len(rows):
        parser.error("two rows have the same label; name them with label=config")
    work = args.out / "quality_per_minute"
    load_start = os.getloadavg()[0]
    import torch

    torch.set_num_threads(1)
    with ThreadPoolExecutor(1) as background:  # the classifier trains (the first time) beside the runs
        features = background.submit(feature_network, work, 1 if args.quick else CLASSIFIER["epochs"])
        if not args.score_only:
            train(rows, args.seeds, args.budgets, work / "runs", args.cores)
        data, extractor, record = features.result()
    torch.set_num_threads(len(args.cores))
    results = score(rows, args.seeds, args.budgets, work, args.num_fake, data, extractor, record)
    if not results:
        sys.exit(f"no snapshot to score in {work / 'runs'}: train the rows first (without --score-only)")
    text = table(results)
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, args.out / "quality_per_minute.png")
    report = "\n\n".join(["# Quality per CPU-minute (Fashion-MNIST)", text,
                          protocol(args, rows, record, results, (load_start, os.getloadavg()[0])),
                          "![FID against CPU-minutes](quality_per_minute.png)"])
    (args.out / "quality_per_minute.md").write_text(report + "\n")
    print(f"\nWrote {args.out / 'quality_per_minute.md'} and {args.out / 'quality_per_minute.png'}")


if __name__ == "__main__":
    main()
