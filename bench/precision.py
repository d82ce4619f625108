"""DCGAN training throughput on this CPU: fp32 vs bf16-mixed, and 2 DDP processes vs 1.

Each setting is a real `lit-gan fit` (DCGAN, embedded MNIST, 28x28, batch 64) in its own
process; images/s comes from the logged `train/epoch_seconds` of the epochs after the first
(warm-up), so start-up and compilation are not counted. DDP's images/s counts the images of
both processes.

Run:  PYTHONPATH=. python bench/precision.py [--batches 40 --epochs 3 --width 64]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SETTINGS = {
    "fp32, 1 process": [],
    "bf16-mixed, 1 process": ["--trainer.precision=bf16-mixed"],
    "fp32, 2 DDP processes": ["--trainer.strategy=ddp", "--trainer.devices=2"],
}


def run(extra: list[str], batches: int, epochs: int, width: int, batch: int, root: Path) -> list[float]:
    """Seconds per epoch (all epochs) of one `lit-gan fit`."""
    run_dir = root / str(len(list(root.iterdir())))
    cmd = [
        sys.executable, "-m", "lit_gan", "fit", "--model=DCGAN", "--data=EmbeddedMNIST",
        f"--model.init_args.generator.init_args.width={width}", f"--model.init_args.discriminator.init_args.width={width}",
        f"--data.init_args.batch_size={batch}", "--trainer.accelerator=cpu",
        f"--trainer.max_epochs={epochs}", f"--trainer.limit_train_batches={batches}", "--trainer.limit_val_batches=2",
        "--trainer.enable_progress_bar=false", "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
        f"--trainer.logger.save_dir={run_dir}", "--trainer.logger.name=", "--trainer.logger.version=",
        f"--trainer.default_root_dir={run_dir}", *extra,
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    rows = csv.DictReader(open(run_dir / "metrics.csv"))
    return [float(r["train/epoch_seconds"]) for r in rows if r.get("train/epoch_seconds")]


def main() -> None:
    from lit_gan.hardware import cpu_features

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=40, help="training batches per epoch (per process)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    a = p.parse_args()
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in SETTINGS.items():
            seconds = run(extra, a.batches, a.epochs, a.width, a.batch_size, Path(tmp))[1:]
            processes = 2 if "DDP" in name else 1
            rates[name] = processes * a.batches * a.batch_size / (sum(seconds) / len(seconds))
    base = rates["fp32, 1 process"]
    print("| setting | images/s | vs fp32, 1 process |\n|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} | {rate / base:.2f}x |")
    print(f"\nDCGAN width {a.width}, 28x28x1, batch {a.batch_size} per process, {a.batches} batches/epoch, "
          f"mean of epochs 2..{a.epochs}; {os.cpu_count()} CPU cores ({cpu_features()}), load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
