"""Reproduce the seed studies' comparisons with lit_gan, one command per study, on CPU.

Every run is a real `lit-gan fit` of `configs/base.yaml` (embedded MNIST, seed 0, 10 epochs)
plus the run's own config, so any single run can be repeated by hand:

    lit-gan fit --config bench/studies/configs/base.yaml --config bench/studies/configs/000/dcgan.yaml

FID & co. come from the Evaluation callback (dataset-classifier features; the protocol is in each
run's metrics/*.json). Writes to `bench/studies/results/`: `<study>.md` (tables), `<study>_curves.png`
(FID, IS and losses over training), and each run's last sample grid and nearest-neighbour picture.
Runs live in `bench/studies/runs/<study>/<run>/` and are never overwritten: move one away to rerun it.

    PYTHONPATH=. python bench/studies/run.py 000 [--jobs 2]
    PYTHONPATH=. python bench/studies/run.py sweep      # the search behind the configs' defaults
    PYTHONPATH=. python bench/studies/run.py 003 --tag fashion -- --data=FashionMNIST  # another dataset
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import queue
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from lit_gan.progress import bar

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFIGS, RUNS, RESULTS = HERE / "configs", HERE / "runs", HERE / "results"
FOLDER = HERE / "data" / "fashion_mnist_folder"


@dataclass(frozen=True)
class Run:
    name: str
    config: str  # under configs/
    args: tuple[str, ...] = ()  # command-line overrides (the sweep's grid points)
    base: str = "base.yaml"  # under configs/: what every run of the study shares

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in "._=" else "_" for c in self.name)

    def command(self) -> str:
        rel = CONFIGS.relative_to(REPO)  # commands run from the repository's root
        return " ".join(["lit-gan fit", f"--config {rel}/{self.base}", f"--config {rel}/{self.config}", *self.args])


@dataclass
class Study:
    title: str
    runs: list[Run]
    question: str = ""
    prepare: Callable[[], None] | None = None
    groups: dict[str, list[Run]] = field(default_factory=dict)  # the sweep: one table per model


def export_fashion_folder(folder: Path = FOLDER, data_dir: Path = HERE / "data", per_class: int = 500) -> None:
    """Write `per_class` Fashion-MNIST training images per class as PNGs, one folder per class
    (from the Debian `dataset-fashion-mnist` package here, torchvision's download elsewhere)."""
    if folder.exists():
        return
    from PIL import Image

    from lit_gan.data import FashionMNIST

    data = FashionMNIST(data_dir=str(data_dir))
    data.prepare_data()
    data.setup("fit")
    images, labels = data.train_set.images, data.train_set.labels
    tmp = folder.with_suffix(".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for c, name in enumerate(data.class_names):
        class_dir = tmp / name.replace("/", "-")  # "T-shirt/top"
        class_dir.mkdir(parents=True)
        for i in (labels == c).nonzero().flatten()[:per_class].tolist():
            Image.fromarray(images[i, 0].numpy()).save(class_dir / f"{i:05d}.png")
    tmp.rename(folder)


def grid(config: str, label: str, **axes: list[str]) -> list[Run]:
    """The runs of a grid over command-line arguments, e.g. grid(..., lr=[...], batch=[...])."""
    flags = {"lr": ["--model.init_args.opt_g.lr={}", "--model.init_args.opt_d.lr={}"],
             "batch": ["--data.init_args.batch_size={}"], "d_steps": ["--model.init_args.opt_d.steps={}"],
             "width": ["--model.init_args.generator.init_args.width={}", "--model.init_args.discriminator.init_args.width={}"],
             "beta1": ["--model.init_args.opt_g.betas=[{},0.999]", "--model.init_args.opt_d.betas=[{},0.999]"]}
    runs = []
    for values in itertools.product(*axes.values()):
        args = tuple(f.format(v) for k, v in zip(axes, values) for f in flags[k])
        runs.append(Run(f"{label} " + " ".join(f"{k}={v}" for k, v in zip(axes, values)), config, args))
    return runs


SWEEP = {
    "DCGAN": grid("000/dcgan.yaml", "DCGAN", lr=["2e-4", "5e-4", "1e-3"], batch=["32", "64", "128"])
    + grid("000/dcgan.yaml", "DCGAN", lr=["2e-3"], batch=["32", "64"]) + grid("000/dcgan.yaml", "DCGAN", lr=["1e-3", "2e-3"], batch=["16"])
    + grid("000/dcgan.yaml", "DCGAN", lr=["1e-3"], batch=["32"], width=["16", "64"]),
    "CDCGAN": grid("000/cdcgan.yaml", "CDCGAN", lr=["2e-4", "5e-4", "1e-3"], batch=["32", "64"])
    + grid("000/cdcgan.yaml", "CDCGAN", lr=["2e-3"], batch=["32"]) + grid("000/cdcgan.yaml", "CDCGAN", lr=["1e-3"], batch=["16"])
    + grid("000/cdcgan.yaml", "CDCGAN", lr=["1e-3"], batch=["32"], width=["64"]),
    "CGAN": grid("sweep/cgan.yaml", "CGAN", lr=["1e-3"], beta1=["0.9"], batch=["64"])
    + grid("sweep/cgan.yaml", "CGAN", lr=["2e-4", "1e-3"], beta1=["0.5", "0.9"], batch=["32"]),
    "ACGAN": grid("004/acgan.yaml", "ACGAN", lr=["2e-4", "1e-3"], batch=["32", "64"]),
    "WGAN-GP": grid("sweep/wgan_gp.yaml", "WGAN-GP", lr=["1e-4", "2e-4", "5e-4"], d_steps=["1", "2", "5"])
    + grid("sweep/wgan_gp.yaml", "WGAN-GP", lr=["1e-3"], d_steps=["1", "2"])
    + grid("sweep/wgan_gp.yaml", "WGAN-GP", lr=["5e-4", "1e-3"], d_steps=["1"], batch=["32"]),
    "CWGAN-GP": grid("003/cwgan_gp.yaml", "CWGAN-GP", lr=["2e-4", "5e-4"], d_steps=["1", "2", "5"])
    + grid("003/cwgan_gp.yaml", "CWGAN-GP", lr=["1e-3"], d_steps=["1"]) + grid("003/cwgan_gp.yaml", "CWGAN-GP", lr=["5e-4", "1e-3"], d_steps=["1"], batch=["32"]),
}
STUDIES: dict[str, Study] = {
    "000": Study("Seed 000: DCGAN vs conditional DCGAN on MNIST", [
        Run("DCGAN", "000/dcgan.yaml"), Run("CDCGAN", "000/cdcgan.yaml"),
    ], "Does conditioning avoid the mode collapse the paper saw?"),
    "001": Study("Seed 001: three architectures and the feature ablation", [
        Run("fully connected", "001/fully_connected.yaml"), Run("fully connected, 60 epochs", "001/fully_connected_long.yaml"),
        Run("fully connected, Adam(2e-4) batch 32, 60 epochs", "001/fully_connected_dcgan_adam.yaml"),
        Run("intermediate", "001/intermediate.yaml"),
        Run("complete (base)", "001/complete.yaml"), Run("flip 10%", "001/flip.yaml"),
        Run("dropout D 0.5 G 0.2", "001/dropout.yaml"), Run("uniform noise", "001/uniform_noise.yaml"),
        Run("sigmoid output", "001/sigmoid.yaml"),
    ], "Does the bigger model learn faster, and do the tricks change the IS/FID curves? (the seed: only sigmoid does, for the worse)"),
    "002": Study("Seed 002: DCGAN on MNIST and on a folder of images, D vs G loss balance", [
        Run("MNIST", "002/mnist.yaml"), Run("MNIST, D lr x5", "002/mnist_strong_d.yaml"),
        Run("Fashion-MNIST folder", "002/folder.yaml"),
    ], "Does D overpower G (D loss to 0, G loss rising), as the seed saw?", prepare=export_fashion_folder),
    "003": Study("Seed 003: conditional DCGAN vs conditional WGAN vs conditional WGAN-GP", [
        Run("CDCGAN", "003/cdcgan.yaml"), Run("conditional WGAN", "003/cwgan.yaml"), Run("CWGAN-GP", "003/cwgan_gp.yaml"),
        Run("CWGAN-GP, tuned", "003/cwgan_gp_tuned.yaml"),
    ], "Which covers all ten digits and draws the digit it is asked for? (the seed: WGAN-GP)"),
    "004": Study("Seed 004: minimax vs non-saturating G loss, 1 vs 4 D steps, ACGAN", [
        Run("non-saturating", "004/nonsaturating.yaml"), Run("minimax", "004/minimax.yaml"),
        Run("4 D steps", "004/d_steps_4.yaml"), Run("4 D steps, 40 epochs", "004/d_steps_4_equal_g.yaml"),
        Run("ACGAN", "004/acgan.yaml"),
    ], "Does the minimax loss stall, do 4 D steps per G step help (at equal batches, and at equal G updates), does ACGAN cover the classes?"),
    "stacked": Study("Stacked MNIST (1,000 modes): remedies for mode collapse at an equal CPU budget", [
        Run(name, f"stacked/{config}.yaml", base="stacked/base.yaml") for name, config in (
            ("DCGAN", "dcgan"), ("DCGAN + minibatch discrimination", "dcgan_mbd"), ("DCGAN + packing 2", "dcgan_pack2"),
            ("DCGAN + minibatch std", "dcgan_mbstd"), ("unrolled DCGAN", "dcgan_unrolled"), ("WGAN-GP", "wgan_gp"),
            ("tuned DCGAN (best recipe)", "dcgan_tuned"))
    ], "How many of the 1,000 modes does each remedy reach, and how evenly, after the same CPU time?"),
    "sweep": Study("The search behind the configs' defaults: quality per CPU-minute", [r for g in SWEEP.values() for r in g],
                   "Which learning rate, batch size and critic steps give the lowest FID after 10 epochs?", groups=SWEEP),
}
KEYS = {"fid": "FID", "kid_mean": "KID", "is_mean": "IS", "precision": "precision", "recall": "recall",
        "classes_covered": "classes", "class_kl": "class KL", "label_accuracy": "label acc."}


def finished(run_dir: Path) -> bool:
    """Whether the run in `run_dir` trained all the epochs its saved config asked for (budgeted
    runs: whether it was validated)."""
    if (run_dir / VALIDATED).is_file():
        return True
    try:
        epochs = yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]["max_epochs"]
        done = [r for r in csv.DictReader(open(run_dir / "metrics.csv")) if r.get("train/epoch_seconds")]
    except (OSError, KeyError, TypeError):
        return False
    return len(done) >= epochs and any((run_dir / "metrics").glob("epoch_*.json"))


def fit(run: Run, study: str, threads: int, overrides: list[str], reuse: bool, cores: set[int] | None = None) -> Path:
    run_dir = RUNS / study / run.slug
    if reuse and finished(run_dir):
        print(f"reused: {run.name} ({run_dir})", flush=True)
        return run_dir
    cmd = [sys.executable, "-m", "lit_gan", "fit", "--config", str(CONFIGS / run.base), "--config",
           str(CONFIGS / run.config), *run.args, *overrides, f"--trainer.default_root_dir={run_dir}"]
    lit_gan(cmd, RUNS / study / f"{run.slug}.log", run.name, threads, cores)
    return run_dir


def lit_gan(cmd: list[str], log: Path, name: str, threads: int, cores: set[int] | None = None) -> None:
    """Run a lit-gan command (offline W&B, `threads` threads, pinned to `cores` if given) into `log`."""
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "OMP_NUM_THREADS": str(threads)}
    log.parent.mkdir(parents=True, exist_ok=True)
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    with open(log, "w") as out:
        if subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, preexec_fn=pin).returncode:
            raise SystemExit(f"{name} failed: see {log}")
    print(f"done: {name} ({log.stem})", flush=True)


# ----- Stacked MNIST: fits stopped by a CPU budget, then one `lit-gan validate` each -------------
VALIDATED = "metrics/validate-last.json"
PACGAN_README = "https://github.com/fjxmlzn/PacGAN/blob/cdf979a0171cf021065423b76c1ce86b35b83262/stacked_MNIST_experiments/README.md"
VEEGAN_PAGE = "https://github.com/akashgit/VEEGAN/blob/0044b1baa13b1f29e5189e75d07e9875868aa4b9/index.md"
R3GAN_PAGE = "https://papers.nips.cc/paper_files/paper/2024/hash/4e2acb1e1c8e297d394ae29ed9535172-Abstract-Conference.html"
FROM_MEMORY = "unverified (from memory of issue 13)"
PACGAN = "Lin et al. 2018 (PacGAN), likely Table 2: VEEGAN's setting (the issue: Table 3)"


@dataclass(frozen=True)
class Figure:
    """One literature figure on Stacked MNIST: what the paper reports and how far it was checked."""
    model: str
    modes: str
    kl: str
    paper: str  # paper, table and setting
    checked: str  # what was read, where; FROM_MEMORY if the figure itself was not


R3GAN_TABLE_3 = f"read in R3GAN's Table 3 (§4.2 of the [NeurIPS paper]({R3GAN_PAGE}), in a stored text copy of its PDF)"
CITED_BY_R3GAN = "Huang et al. 2024 (R3GAN), Table 3, citing the original paper"

LITERATURE: list[Figure] = [
    Figure("DCGAN", "99", "3.40", CITED_BY_R3GAN, R3GAN_TABLE_3 + "; PacGAN's own table not read"),
    Figure("Unrolled GAN", "48.7", "4.32", PACGAN, FROM_MEMORY),
    Figure("VEEGAN", "150", "2.95", CITED_BY_R3GAN, R3GAN_TABLE_3 + "; VEEGAN's own table not read"),
    Figure("WGAN-GP", "959", "0.73", CITED_BY_R3GAN, R3GAN_TABLE_3),
    Figure("PacGAN", "992", "0.28", CITED_BY_R3GAN, R3GAN_TABLE_3 + " (which PacGAN setting is not said)"),
    Figure("PacDCGAN2", "1,000", "0.06", PACGAN, FROM_MEMORY),
    Figure("StyleGAN2", "940", "0.42", CITED_BY_R3GAN, R3GAN_TABLE_3),
    Figure("R3GAN (Config E)", "1,000", "0.029", "Huang et al. 2024 (R3GAN, NeurIPS), Table 3", R3GAN_TABLE_3),
]
"""Stacked MNIST figures: R3GAN's Table 3 was read as text (its own result and the figures it cites);
PacGAN's, VEEGAN's and the Unrolled GAN's own tables were not (the stored copies hold their first pages
only, the official repositories keep their tables as images), so the rows only issue 13 quotes stay
marked. What else was read is in LITERATURE_NOTES, each with the address it was read at."""

LITERATURE_NOTES: list[str] = [
    f"Tables: [PacGAN's README]({PACGAN_README}) puts its DCGAN and PacDCGAN2-4 runs in VEEGAN's setting in "
    "Table 2 and, by elimination, its Unrolled GAN settings (D 1/4 and 1/2 the size of G) in Table 3, both as "
    "images. A VEEGAN row beside DCGAN's points to Table 2 rather than the issue's Table 3; not confirmed.",
    "Not quoted: Metz et al. 2017 (Unrolled GAN, section 3.3.1, D 1/4 and 1/2 of G) and Srivastava et al. 2017 "
    "(VEEGAN, Table 1 by the issue) "
    "report Stacked MNIST too, but no stored copy holds their tables as text, so no figure of theirs is given.",
    "R3GAN's Table 1 (its loss ablation, a small ResNet): RpGAN + R1 + R2 1,000 modes, KL 0.0781; GAN + R1 + R2 "
    "693, 0.9270; either loss with R1 alone fails. Its KL is the reverse KL to the uniform mode distribution, as ours.",
    "PacDCGAN2 1,000 / 0.06 and Unrolled GAN 48.7 / 4.32 appear as text only in a later paper's table (Kumar et al. "
    "2019, MEG, which borrows them from Belghazi et al. 2018), not in PacGAN's own text.",
    "Their settings differ from ours: GPU runs (PacGAN's code schedules its runs on GPUs), their own "
    "MNIST classifiers (PacGAN's: Keras' `mnist_cnn` demo), and VEEGAN counts 26,000 samples, averaged over five "
    f"runs, with KL between the generated and the data distribution ([VEEGAN's page]({VEEGAN_PAGE})); ours are "
    "CPU runs of the budget above on one thread, one seed, lit_gan's digit classifier and KL(generated || uniform).",
]


def literature_lines() -> list[str]:
    """The report's literature section: the figures with their sources, then what was checked."""
    if not LITERATURE:
        return []
    return ["", "**Literature.** Other networks, budgets and classifiers: only the trend compares. No figure below "
            "is verified unless its last column says where it was read; the notes below say what else was checked.", "",
            "| model | modes | KL | paper, table, setting | checked |", "|---|---:|---:|---|---|",
            *[f"| {f.model} | {f.modes} | {f.kl} | {f.paper} | {f.checked} |" for f in LITERATURE],
            "", *[f"- {note}" for note in LITERATURE_NOTES]]


def fit_and_validate(run: Run, study: str, overrides: list[str], reuse: bool, cores: set[int]) -> Path:
    """The budgeted fit, then `lit-gan validate` of its last checkpoint (the mode count over the
    data's 26,000 samples), one thread pinned to `cores`."""
    run_dir = RUNS / study / run.slug
    if reuse and (run_dir / VALIDATED).is_file():
        print(f"reused: {run.name} ({run_dir})", flush=True)
        return run_dir
    fit(run, study, 1, overrides, False, cores)
    cmd = [sys.executable, "-m", "lit_gan", "validate", "--config", str(run_dir / "config.yaml"),
           "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"), "--trainer.logger=false"]
    lit_gan(cmd, RUNS / study / f"{run.slug}.validate.log", run.name, 1, cores)
    return run_dir


def rerun_command(name: str, overrides: list[str], jobs: int | None = None) -> str:
    """The command that reruns study `name` (with its tag and overrides)."""
    study, _, tag = name.partition("-")
    return " ".join(["python bench/studies/run.py", study, *([f"--jobs {jobs}"] if jobs else []),
                     *([f"--tag {tag} --", *overrides] if tag else [])])


def stacked_report(name: str, study: Study, dirs: dict[Run, Path], jobs: int, overrides: list[str]) -> str:
    from lit_gan.checkpoint_io import read_checkpoint

    rows, real = [], None
    for run, run_dir in dirs.items():
        record = json.loads((run_dir / VALIDATED).read_text())
        m, real = record["metrics"], record
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        batches = read_checkpoint(run_dir / "checkpoints" / "last.ckpt").get("batches_seen", 0)
        minutes = [float(r["train/cpu_minutes"]) for r in csv.DictReader(open(run_dir / "metrics.csv")) if r.get("train/cpu_minutes")]
        images = batches * config["data"]["init_args"]["batch_size"]
        grids = sorted((run_dir / "samples").glob("*.png"), key=lambda p: p.stat().st_mtime)
        picture = f"{name}_{run.slug}_samples.png"
        shutil.copy(grids[-1], RESULTS / picture)
        rows.append(f"| {run.name} | {max(minutes):.1f} | {batches:,} | {images / 1000:.0f}k | {m['modes']:.0f} | "
                    f"{m['mode_kl']:.2f} | {m['fid']:.1f} | {m['is_mean']:.0f} | ![{run.name}]({picture}) |")
    assert real is not None
    m, p = real["metrics"], real["protocol"]
    source, stacks = p["dataset"]["args"]["source_name"], p["dataset"]["args"]["epoch_size"]
    budget = ("**Budget and protocol.** Each run is `lit-gan fit --config bench/studies/configs/stacked/base.yaml "
              f"--config bench/studies/configs/stacked/<run>.yaml`: StackedMNIST built from {source} "
              f"({stacks:,} training stacks), seed 0, stopped by `Budget` (CPU clock) after the same "
              f"CPU time in training batches (one thread, pinned, {jobs} runs side by side on a shared machine), then "
              f"`lit-gan validate` of last.ckpt. Modes: {p['modes']['num_fake']:,} samples, each channel read by the "
              f"digit classifier (digit test accuracy {p['modes']['digit_accuracy']:.3f}; all "
              f"three digits right on {m['classifier_accuracy']:.1%} of test stacks); a mode is covered with at least one "
              f"sample; KL(generated || uniform) in nats (log 1000 = {m['mode_kl_max']:.2f} for a single mode). FID and IS "
              f"in the same classifier's features (per-channel features side by side, 1,000-way logits), "
              f"{p['num_fake']:,} samples vs {p['num_real']:,} real training stacks. `{rerun_command(name, overrides, jobs)}` "
              "reruns everything.")
    lines = [*header(study), budget, "",
             "| run | CPU-min | batches | images | modes | KL | FID | IS | last sample grid |", "|---|---:|---:|---:|---:|---:|---:|---:|---|",
             f"| real stacks (reference) | – | – | – | {m['modes_real']:.0f} | {m['mode_kl_real']:.2f} | 0 | {m['is_real_mean']:.0f} | |",
             *rows]
    lines += literature_lines()
    lines += ["", "Commands:", "", *[f"- {run.name}: `{' '.join([run.command(), *overrides])}`, then `lit-gan validate "
                                      f"--config <run>/config.yaml --ckpt_path <run>/checkpoints/last.ckpt`" for run in dirs]]
    return "\n".join(lines) + "\n"


def summarise(run_dir: Path) -> dict:
    """Per-epoch training seconds (evaluation excluded), FID/IS curves, losses over training and
    the last evaluation."""
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))

    def column(key: str) -> list[tuple[int, float]]:  # (epoch, value) wherever `key` was logged
        return [(int(r["epoch"]) + 1, float(r[key])) for r in rows if r.get(key)]

    evaluation = dict(column("val/eval_seconds"))  # FID & co. run inside the epoch: not training time
    seconds = [s - evaluation.get(epoch, 0.0) for epoch, s in column("train/epoch_seconds")]
    logged_per_epoch = len(column("train/d_loss")) / len(seconds)
    curves = {k: [((i + 1) / logged_per_epoch, v) for i, (_, v) in enumerate(column(f"train/{k}"))] for k in ("d_loss", "g_loss")}
    final = {}
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):  # means over the last epoch
        values = [v for epoch, v in column(f"train/{key}") if epoch == len(seconds)]
        final[key] = sum(values) / len(values) if values else None
    last = json.loads(sorted((run_dir / "metrics").glob("epoch_*.json"))[-1].read_text())
    return {"seconds": seconds, "fid": column("val/fid"), "is": column("val/is_mean"), **curves, "final": final,
            "metrics": last["metrics"], "protocol": last["protocol"], "dir": run_dir}


def header(study: Study) -> list[str]:
    """A study report's title and question; the budget paragraph follows."""
    return [f"# {study.title}", "", f"**Question.** {study.question}", ""]


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def table(results: dict[Run, dict], sort: bool = False) -> list[str]:
    keys = [k for k in KEYS if any(k in r["metrics"] for r in results.values())]
    lines = ["| run | s/epoch | CPU-min | " + " | ".join(KEYS[k] for k in keys) + " | D loss | G loss | D(x) | D(G(z)) |",
             "|---|" + "---:|" * (len(keys) + 6)]
    order = sorted(results, key=lambda r: results[r]["metrics"]["fid"]) if sort else list(results)
    for run in order:
        r = results[run]
        cells = [fmt(r["metrics"].get(k)) for k in keys] + [fmt(r["final"][k]) for k in ("d_loss", "g_loss", "d_real", "d_fake")]
        mean = sum(r["seconds"]) / len(r["seconds"])
        lines.append(f"| {run.name} | {mean:.1f} | {sum(r['seconds']) / 60:.1f} | " + " | ".join(cells) + " |")
    return lines


def per_class(results: dict[Run, dict]) -> list[str]:
    """Label accuracy and FID per class for the conditional runs."""
    conditional = {run: r["metrics"] for run, r in results.items() if "label_accuracy_class/0" in r["metrics"]}
    if not conditional:
        return []
    classes = sorted(int(k.split("/")[1]) for k in next(iter(conditional.values())) if k.startswith("label_accuracy_class/"))
    lines = ["", "Per class: label accuracy (the classifier agrees with the label asked for) / FID of that class.", "",
             "| run | " + " | ".join(map(str, classes)) + " |", "|---|" + "---:|" * len(classes)]
    for run, m in conditional.items():
        lines.append(f"| {run.name} | " + " | ".join(f"{m[f'label_accuracy_class/{c}']:.2f} / {m[f'fid_class/{c}']:.0f}" for c in classes) + " |")
    return lines


def plot(results: dict[Run, dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (fid, score, loss) = plt.subplots(1, 3, figsize=(13, 3.6))
    for i, (run, r) in enumerate(results.items()):
        color = f"C{i % 10}"
        fid.plot(*zip(*r["fid"]), marker="o", color=color, label=run.name)
        score.plot(*zip(*r["is"]), marker="o", color=color)
        for key, style in (("d_loss", "-"), ("g_loss", "--")):
            x, y = zip(*r[key])
            window = max(1, len(y) // 15)  # a running mean over about a fifteenth of training
            smooth = [sum(y[max(0, j - window + 1): j + 1]) / len(y[max(0, j - window + 1): j + 1]) for j in range(len(y))]
            loss.plot(x, smooth, style, color=color, linewidth=1)
    fid.set(xlabel="epoch", ylabel="FID (classifier features)", yscale="log")
    score.set(xlabel="epoch", ylabel="IS (classifier features)")
    loss.set(xlabel="epoch", ylabel="loss (running mean): D solid, G dashed")
    fid.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_sweep(study: Study, results: dict[Run, dict], path: Path) -> None:
    """FID against training CPU-minutes, one panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(study.groups), figsize=(4 * len(study.groups), 3.4), sharey=True)
    for ax, (model, runs) in zip(axes, study.groups.items()):
        for run in runs:
            r = results[run]
            minutes = [sum(r["seconds"][:epoch]) / 60 for epoch, _ in r["fid"]]
            ax.plot(minutes, [f for _, f in r["fid"]], marker=".", label=run.name.removeprefix(model + " "))
        ax.set(title=model, xlabel="training CPU-minutes", yscale="log")
        ax.legend(fontsize=6)
    axes[0].set_ylabel("FID (classifier features)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(name: str, study: Study, results: dict[Run, dict], jobs: int, threads: int, overrides: list[str]) -> str:
    rerun = rerun_command(name, overrides)
    first = next(iter(results.values()))
    protocol, m = first["protocol"], first["metrics"]
    lines = [*header(study),
             f"Each run is `lit-gan fit --config bench/studies/configs/base.yaml --config "
             f"bench/studies/configs/<run config>`: 10 epochs of the embedded MNIST (4,500 training digits) unless "
             f"its config says otherwise, seed 0, CPU, {jobs} run(s) side by side with {threads} thread(s) each. "
             f"Metrics after the last epoch in {protocol['extractor']} features (test accuracy "
             f"{m.get('classifier_accuracy', float('nan')):.3f}), {protocol['num_fake']} generated vs "
             f"{protocol['num_real']} real images ({protocol['real_split']} split); IS of the real images "
             f"{m.get('is_real_mean', float('nan')):.2f}. D loss, G loss, D(x) and D(G(z)) are means over the last epoch; s/epoch and CPU-min "
             f"count training only (the evaluations' time, about 3 s each, is left out). "
             f"`{rerun}` reruns everything.", ""]
    lines[-2] = "**Budget and protocol.** " + lines[-2]
    if overrides:
        lines[-2] += f" Every run here also had `{' '.join(overrides)}`."
    for run, r in results.items():  # e.g. another dataset: its own classifier, FIDs not comparable
        if r["protocol"]["extractor_key"] != protocol["extractor_key"]:
            lines[-2] += (f" **{run.name}** is measured in the features of its own dataset's classifier (test accuracy "
                          f"{r['metrics'].get('classifier_accuracy', float('nan')):.3f}, {r['protocol']['num_real']} real "
                          f"images): its numbers compare only with runs on the same data.")
    if study.groups:
        for model, runs in study.groups.items():
            lines += [f"## {model} (sorted by FID)", "", *table({r: results[r] for r in runs}, sort=True), ""]
        plot_sweep(study, results, RESULTS / f"{name}_fid.png")
        lines += [f"![FID against CPU-minutes]({name}_fid.png)", ""]
    else:
        lines += table(results) + per_class(results)
        plot(results, RESULTS / f"{name}_curves.png", study.title)
        lines += ["", f"![FID, IS and losses over training]({name}_curves.png)", "", "| run | last sample grid | nearest real neighbours |", "|---|---|---|"]
        for run, r in results.items():
            cells = []
            for sub in ("samples", "neighbours"):
                pictures = sorted((r["dir"] / sub).glob("*.png"))
                if pictures:
                    shutil.copy(pictures[-1], RESULTS / f"{name}_{run.slug}_{sub}.png")
                    cells.append(f"![{run.name} {sub}]({name}_{run.slug}_{sub}.png)")
            lines.append(f"| {run.name} | " + " | ".join(cells) + " |")
    lines += ["", "Commands:", "", *[f"- {run.name}: `{' '.join([run.command(), *overrides])}`" for run in results]]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", choices=sorted(STUDIES))
    p.add_argument("--jobs", type=int, default=1, help="runs side by side (each gets cores / jobs threads)")
    p.add_argument("--reuse", action="store_true", help="report finished runs found in runs/ instead of refusing")
    p.add_argument("--tag", default="", help="names the runs and results of a variant (needs overrides)")
    p.add_argument("overrides", nargs="*", help="after --: lit-gan arguments for every run, e.g. -- --data=FashionMNIST")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)  # argparse alone refuses options after `study ... --`
    a = p.parse_args(argv[:cut])
    a.overrides = argv[cut + 1:]
    if bool(a.tag) != bool(a.overrides):
        p.error("overrides change the runs: name them with --tag (and --tag needs overrides)")
    study, name = STUDIES[a.study], a.study + (f"-{a.tag}" if a.tag else "")
    threads = max(1, (os.cpu_count() or 1) // a.jobs)
    existing = [str(RUNS / name / run.slug) for run in study.runs if (RUNS / name / run.slug).exists()
                and not (a.reuse and finished(RUNS / name / run.slug))]
    if existing:
        p.error(f"{', '.join(existing)} exist: move them away to rerun (results are never overwritten)")
    if study.prepare:
        study.prepare()
    shown = bar(total=len(study.runs), desc=f"study {name}", unit="run")

    def counted(result: Path) -> Path:
        shown.update()
        return result
    if a.study == "stacked":  # one thread per run, each pinned to its own core
        free: queue.Queue[int] = queue.Queue()
        for core in sorted(os.sched_getaffinity(0))[-a.jobs:]:
            free.put(core)

        def pinned(run: Run) -> Path:
            core = free.get()
            try:
                return counted(fit_and_validate(run, name, a.overrides, a.reuse, {core}))
            finally:
                free.put(core)

        with ThreadPoolExecutor(a.jobs) as pool:
            dirs = dict(zip(study.runs, pool.map(pinned, study.runs)))
        shown.close()
        RESULTS.mkdir(exist_ok=True)
        text = stacked_report(name, study, dirs, a.jobs, a.overrides)
        (RESULTS / f"{name}.md").write_text(text)
        print(text)
        return
    with ThreadPoolExecutor(a.jobs) as pool:
        dirs = list(pool.map(lambda run: counted(fit(run, name, threads, a.overrides, a.reuse)), study.runs))
    shown.close()
    results = {run: summarise(d) for run, d in zip(study.runs, dirs)}
    RESULTS.mkdir(exist_ok=True)
    text = report(name, study, results, a.jobs, threads, a.overrides)
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
