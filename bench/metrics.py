"""Evaluation cost: lit_gan's `evaluate` on 10,000 generated samples with the dataset-classifier
extractor, against torch-fidelity's `calculate_metrics` on the very same uint8 tensors.

What is compared. Both sides get the same 10,000 "generated" images (uint8, 1x28x28: blends of two
of EmbeddedMNIST's 500 held-out digits of one class, plus pixel noise: plausible, diverse, not
training images) and the same real reference (the 4,500 training digits), and use the same network: the
classifier auto-trained by lit_gan, registered in torch-fidelity as a feature extractor
("penultimate" features for FID/KID/PRC, "logits" for IS). torch-fidelity computes IS, FID, KID
(100 subsets of 1,000) and precision/recall (k=3), batch 250, CPU, no DataLoader workers. lit_gan's
`evaluate` computes the same four with the same torch-fidelity functions and seeds (so the values
agree), plus the real images' IS, density/coverage, nearest-neighbour distances and picture, and
mode coverage. lit_gan replays the tensors through a stand-in generator (no generation cost on
either side). "cold": real features and statistics computed; "warm": lit_gan's on-disk real
reference, torch-fidelity's own cache (`input2_cache_name`) for the real features.

Run:  python bench/metrics.py [--repeats 3 --threads 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
import torch_fidelity
from threadpoolctl import threadpool_limits
from torch import Tensor
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from lit_gan.data import EmbeddedMNIST
from lit_gan.metrics import ClassifierExtractor, Settings, evaluate
from lit_gan.metrics.classifier import Classifier, load_or_train, uint8_to_input

NUM_FAKE = 10_000
KEYS = {"fid": "frechet_inception_distance", "kid_mean": "kernel_inception_distance_mean",
        "is_mean": "inception_score_mean", "precision": "precision", "recall": "recall"}


class Replay(L.LightningModule):
    """A stand-in generator that returns stored uint8 images (in [-1, 1]), in order."""

    value_range = (-1.0, 1.0)
    conditional = False

    def __init__(self, images: Tensor) -> None:
        super().__init__()
        self.images, self.next = images, 0

    def generate(self, n: int, labels: Tensor | None = None) -> Tensor:
        out = self.images[self.next : self.next + n].float() / 127.5 - 1
        self.next = (self.next + n) % len(self.images)
        return out


class Images(Dataset):
    """uint8 (C, H, W) items, as torch-fidelity wants them."""

    def __init__(self, images: Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i]


class FidelityClassifier(FeatureExtractorBase):
    """lit_gan's dataset classifier as a torch-fidelity feature extractor."""

    net: Classifier | None = None

    def __init__(self, name: str, features_list: list[str], **kwargs) -> None:
        super().__init__(name, features_list)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("penultimate", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "logits" if metric == "isc" else "penultimate"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        features = self.net.features(uint8_to_input(x))
        out = {"penultimate": features, "logits": self.net.head(features)}
        return tuple(out[name] for name in self.features_list)


def fake_images(data: EmbeddedMNIST, n: int) -> Tensor:
    """Blends of two held-out digits of one class (weights 0.3..0.7) plus pixel noise: plausible,
    diverse, and not training images."""
    g = torch.Generator().manual_seed(0)
    images, labels = data.val_set.images.float(), data.val_set.labels
    first = torch.randint(len(images), (n,), generator=g)
    second = torch.empty_like(first)
    for c in labels.unique():
        pool, rows = torch.nonzero(labels == c)[:, 0], torch.nonzero(labels[first] == c)[:, 0]
        second[rows] = pool[torch.randint(len(pool), (len(rows),), generator=g)]
    weight = torch.rand(n, 1, 1, 1, generator=g) * 0.4 + 0.3
    mixed = weight * images[first] + (1 - weight) * images[second] + 8 * torch.randn(n, *images.shape[1:], generator=g)
    return mixed.round().clamp(0, 255).to(torch.uint8)


def run_lit_gan(model: Replay, data: EmbeddedMNIST, extractor: ClassifierExtractor, record: dict, cache: Path,
                cold: bool) -> tuple[float, dict]:
    if cold:
        shutil.rmtree(cache / "reference", ignore_errors=True)
    settings = Settings(num_fake=NUM_FAKE, num_real=None, batch_size=250, seed=2020, cache_dir=str(cache))
    model.next = 0
    start = time.perf_counter()
    report = evaluate(model, data, extractor, settings, extractor, record)
    return time.perf_counter() - start, report.metrics


def run_fidelity(fake: Tensor, real: Tensor, cache: Path, cold: bool) -> tuple[float, dict]:
    if cold:
        shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    out = torch_fidelity.calculate_metrics(
        input1=Images(fake), input2=Images(real), feature_extractor="lit-gan-classifier", isc=True, fid=True, kid=True,
        prc=True, cuda=False, batch_size=250, save_cpu_ram=True, verbose=False, rng_seed=2020,
        cache=not cold, cache_root=str(cache), input2_cache_name="embedded-mnist-train",
    )
    return time.perf_counter() - start, {k: out[v] for k, v in KEYS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    root = Path(tempfile.mkdtemp(prefix="lit_gan_bench_"))
    data = EmbeddedMNIST()
    data.setup()
    with threadpool_limits(limits=args.threads, user_api="blas"):
        start = time.perf_counter()
        net, record = load_or_train(data, root / "lit", epochs=3)
        train_seconds = time.perf_counter() - start
        extractor = ClassifierExtractor(net)
        FidelityClassifier.net = net
        torch_fidelity.register_feature_extractor("lit-gan-classifier", FidelityClassifier)
        fake, real = fake_images(data, NUM_FAKE), data.train_set.images
        model = Replay(fake)
        runs = {
            "torch-fidelity `calculate_metrics`, cold": lambda: run_fidelity(fake, real, root / "tf", cold=True),
            "torch-fidelity `calculate_metrics`, warm": lambda: run_fidelity(fake, real, root / "tf", cold=False),
            "lit_gan `evaluate`, cold": lambda: run_lit_gan(model, data, extractor, record, root / "lit", cold=True),
            "lit_gan `evaluate`, warm": lambda: run_lit_gan(model, data, extractor, record, root / "lit", cold=False),
        }
        run_fidelity(fake, real, root / "tf", cold=False)  # fills torch-fidelity's cache for the warm rows
        times: dict[str, list[float]] = {name: [] for name in runs}
        values: dict[str, dict] = {}
        for _ in range(args.repeats):  # interleaved, to spread machine noise over all rows
            for name, run in runs.items():
                seconds, values[name] = run()
                times[name].append(seconds)
    shutil.rmtree(root, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"\nClassifier auto-training (3 epochs, {record['train_images']} digits): {train_seconds:.1f} s, "
          f"test accuracy {record['test_accuracy']:.4f}. {NUM_FAKE:,} generated vs {len(real):,} real, "
          f"{args.threads} threads, load average {load:.1f}, median of {args.repeats}.\n")
    print("| pipeline | seconds | FID | KID | IS | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in runs:
        v = values[name]
        print(f"| {name} | {statistics.median(times[name]):.2f} | {v['fid']:.4f} | {v['kid_mean']:.5f} | "
              f"{v['is_mean']:.4f} | {v['precision']:.4f} | {v['recall']:.4f} |")


if __name__ == "__main__":
    main()
