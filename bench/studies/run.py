"""Reproduce the seed studies' comparisons with lit_gan, one command per study, on CPU.

Each run is a real `lit-gan fit` on the embedded MNIST (5,000 digits, no download) with a fixed
seed and budget; FID and friends come from the Evaluation callback (dataset-classifier features,
its protocol in each run's metrics/*.json). Writes `bench/studies/results/<study>.md` (table),
`<study>_fid.png` (FID over epochs) and `<study>_<run>.png` (each run's last sample grid).

Run:  PYTHONPATH=. python bench/studies/run.py 000 [--epochs 10 --width 32]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STUDIES: dict[str, tuple[str, dict[str, list[str]]]] = {
    "000": ("Seed 000: DCGAN vs conditional DCGAN on MNIST (does conditioning avoid mode collapse?)", {
        "DCGAN": ["--model=DCGAN"],
        "CDCGAN": ["--model=CDCGAN"],
    }),
    "004": ("Seed 004: minimax vs non-saturating G loss, 1 vs 4 D steps, ACGAN", {
        "DCGAN non-saturating": ["--model=DCGAN"],
        "DCGAN minimax": ["--model=DCGAN", "--model.init_args.loss=minimax"],
        "DCGAN 4 D steps": ["--model=DCGAN", "--model.init_args.d_steps=4"],
        "ACGAN": ["--model=ACGAN"],
    }),
    "001": ("Seed 001: architectures and the feature ablation", {
        "GAN (fully connected)": ["--model=GAN"],
        "DCGAN (base)": ["--model=DCGAN"],
        "flip 10%": ["--model=DCGAN", "--model.init_args.label_flip=0.1"],
        "dropout D 0.5 / G 0.2": ["--model=DCGAN", "--model.init_args.d_dropout=0.5", "--model.init_args.g_dropout=0.2"],
        "uniform noise": ["--model=DCGAN", "--model.init_args.noise=uniform"],
        "sigmoid output": ["--model=DCGAN", "--model.init_args.final_activation=sigmoid", "--data.init_args.value_range=[0,1]"],
    }),
    "003": ("Seed 003: conditional DCGAN vs conditional WGAN vs conditional WGAN-GP", {
        "CDCGAN": ["--model=CDCGAN"],
        "conditional WGAN": ["--model=WGAN", "--model.init_args.conditional=true"],
        "CWGAN-GP": ["--model=CWGANGP"],
    }),
}
KEYS = ("fid", "kid_mean", "is_mean", "precision", "recall", "classes_covered", "class_kl", "label_accuracy")


def fit(name: str, args: list[str], study: str, epochs: int, width: int, every: int) -> Path:
    run_dir = HERE / "runs" / study / name.replace(" ", "_").replace("/", "-")
    if run_dir.exists():
        raise SystemExit(f"{run_dir} exists: move it away to rerun (results are never overwritten)")
    cmd = [sys.executable, "-m", "lit_gan", "fit", "--data=EmbeddedMNIST", *args, f"--model.init_args.width={width}",
           "--seed_everything=0", f"--trainer.max_epochs={epochs}", "--trainer.accelerator=cpu",
           "--trainer.enable_progress_bar=false", f"--evaluation.every_n_epochs={every}",
           f"--trainer.default_root_dir={run_dir}"]
    subprocess.run(cmd, check=True, env={**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")},
                   stdout=subprocess.DEVNULL)
    return run_dir


def summarise(run_dir: Path) -> dict:
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    seconds = [float(r["train/epoch_seconds"]) for r in rows if r.get("train/epoch_seconds")]
    curve = [(int(r["epoch"]) + 1, float(r["val/fid"])) for r in rows if r.get("val/fid")]
    last = json.loads(sorted((run_dir / "metrics").glob("epoch_*.json"))[-1].read_text())
    return {"seconds": sum(seconds) / len(seconds), "curve": curve, "metrics": last["metrics"], "protocol": last["protocol"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", choices=sorted(STUDIES))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--every", type=int, default=2, help="evaluate every n epochs")
    a = p.parse_args()
    title, runs = STUDIES[a.study]
    results = {name: summarise(fit(name, args, a.study, a.epochs, a.width, a.every)) for name, args in runs.items()}
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    protocol = next(iter(results.values()))["protocol"]
    lines = [f"# {title}", "", f"Budget: {a.epochs} epochs of the embedded MNIST (4,500 training digits), width {a.width}, "
             f"batch 64, seed 0, CPU (2 cores). Metrics at the last epoch in {protocol['extractor']} features "
             f"(test accuracy {results[next(iter(results))]['metrics'].get('classifier_accuracy', float('nan')):.3f}), "
             f"{protocol['num_fake']} generated vs {protocol['num_real']} real ({protocol['real_split']} split).", "",
             "| run | s/epoch | " + " | ".join(KEYS) + " | FID per CPU-minute* |", "|---|" + "---:|" * (len(KEYS) + 2)]
    for name, r in results.items():
        m = r["metrics"]
        cells = [f"{m[k]:.3g}" if k in m else "–" for k in KEYS]
        minutes = r["seconds"] * a.epochs / 60
        lines.append(f"| {name} | {r['seconds']:.1f} | " + " | ".join(cells) + f" | {m['fid']:.2f} after {minutes:.1f} min |")
    lines += ["", "*the final FID and the training minutes it took.", ""]
    for name in results:
        run_dir = HERE / "runs" / a.study / name.replace(" ", "_").replace("/", "-")
        grid = sorted((run_dir / "samples").glob("epoch_*.png"))[-1]
        shutil.copy(grid, out / f"{a.study}_{run_dir.name}.png")
        lines.append(f"![{name}]({a.study}_{run_dir.name}.png) {name}  ")
    (out / f"{a.study}.md").write_text("\n".join(lines))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, r in results.items():
        ax.plot(*zip(*r["curve"]), marker="o", label=name)
    ax.set(xlabel="epoch", ylabel="FID (classifier features)", yscale="log", title=f"study {a.study}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{a.study}_fid.png", dpi=110)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
