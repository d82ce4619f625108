"""The evaluation's automatic classifier: seconds and test accuracy of its default budget.

For each dataset at hand, `load_or_train` with its defaults (`STEPS` steps of 128 images) in a
fresh cache: wall-clock and process CPU seconds, torch threads, test accuracy. CIFAR-10 is not on
this machine: its row trains on random 3x32x32 images of the same count, which times the budget
(the accuracy of that row means nothing and is not shown).

Run:  python bench/classifier.py [--datasets embedded fashion cifar-shaped --threads 2]

`--ship` also copies each trained classifier (embedded, fashion) into lit_gan/metrics/shipped/
under its cache key's name and records its SHA-256 in SHA256SUMS: lit_gan then loads it instead
of training the same classifier again (the quickstart, the tests).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from lit_gan.data import EmbeddedMNIST, FashionMNIST
from lit_gan.data.base import ImageDataModule, Split, TensorImageDataModule
from lit_gan.metrics.classifier import SHIPPED, STEPS, load_or_train


class RandomCIFARShaped(TensorImageDataModule):
    """50,000 random uint8 images 3x32x32 with 10 labels (1,000 held out): CIFAR-10's shape, for timing only."""

    native_shape = (3, 32, 32)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._num_classes, self.class_names = 10, [str(c) for c in range(10)]

    def _load(self) -> tuple[Split, Split, Split]:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (51_000, 3, 32, 32), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, 10, (51_000,), generator=g)
        held_out = (images[50_000:], labels[50_000:])
        return (images[:50_000], labels[:50_000]), held_out, held_out


DATASETS: dict[str, type[ImageDataModule]] = {"embedded": EmbeddedMNIST, "fashion": FashionMNIST,
                                               "cifar-shaped": RandomCIFARShaped}


def ship(entry: Path) -> None:
    """`entry` into lit_gan's shipped classifiers, its SHA-256 into SHA256SUMS (replacing its line)."""
    SHIPPED.mkdir(exist_ok=True)
    shutil.copyfile(entry, SHIPPED / entry.name)
    sums = SHIPPED / "SHA256SUMS"
    lines = [line for line in (sums.read_text().splitlines() if sums.is_file() else []) if not line.endswith(f"  {entry.name}")]
    lines.append(f"{hashlib.sha256(entry.read_bytes()).hexdigest()}  {entry.name}")
    sums.write_text("\n".join(sorted(lines, key=lambda line: line.split()[1])) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ship", action="store_true", help="copy the classifiers into lit_gan/metrics/shipped/")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"| data | steps x batch | wall s | CPU s | threads | test accuracy |\n|---|---|---:|---:|---:|---:|")
    for name in args.datasets:
        data = DATASETS[name]()
        data.setup()
        wall, cpu = time.perf_counter(), time.process_time()
        _, record = load_or_train(data, tempfile.mkdtemp(), progress=False, use_shipped=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if args.ship and name != "cifar-shaped":
            ship(Path(record["path"]))
        accuracy = f"{record['test_accuracy']:.4f}" if name != "cifar-shaped" else "–"
        print(f"| {name} | {STEPS} x 128 | {wall:.1f} | {cpu:.1f} | {args.threads} | {accuracy} |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} (2 cores: above ~2 the numbers are inflated by other work)")


if __name__ == "__main__":
    main()
