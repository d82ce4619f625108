"""Per-network DDP (`lit_gan.distributed.GANDDPStrategy`) against Lightning's whole-module DDP with
`find_unused_parameters=True`, and 2 processes against 1.

Each setting is one `lightning.Trainer.fit` of DCGAN or WGAN-GP (embedded MNIST, 28x28, batch 64
per process, one torch thread per process, each process pinned to its own core, gloo on CPU) in
its own process group. A callback times every training batch (one D step, plus G's step when it is G's turn: every batch for DCGAN,
every 5th for WGAN-GP) in wall-clock and process CPU time; the first `--warmup` batches are not
counted; each setting runs `--repeats` times, alternated, and the fastest is kept. A communication
hook counts the gradient elements each strategy all-reduces (whole-module DDP reduces every
bucket in every backward, G's in D's backward too). The two strategies train
from the same seed on the same batches, so their final weights are compared too (max |difference|
over rank 0's state dict).

Run:  PYTHONPATH=. python bench/ddp.py [--batches 60 --warmup 10 --width 32 --repeats 3 --models DCGAN WGANGP]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("DCGAN", "WGANGP")
OLD, NEW = "ddp_find_unused_parameters_true", "gan_ddp"


def worker(out: Path, settings: dict) -> None:
    """One fit (Lightning relaunches this for rank 1); rank r writes out/rank<r>.json and rank 0 the weights."""
    import lightning as L
    import torch
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel

    import lit_gan.models
    from lit_gan.data import EmbeddedMNIST

    torch.set_num_threads(1)
    cores = settings["cores"]  # the launcher's: rank 1 starts from rank 0, after rank 0 is pinned
    os.sched_setaffinity(0, {cores[int(os.environ.get("LOCAL_RANK", 0)) % len(cores)]})  # a core per process
    L.seed_everything(0, verbose=False)
    cls = getattr(lit_gan.models, settings["model"])
    specs = cls().hparams  # the variant's own networks, at another width
    model = cls(**{role: {**specs[role], "init_args": {**specs[role]["init_args"], "width": settings["width"]}}
                   for role in ("generator", "discriminator")})

    class Clock(L.Callback):
        """Times each batch; counts the gradient elements the DDP modules all-reduce."""

        def __init__(self) -> None:
            self.wall: list[float] = []
            self.cpu: list[float] = []
            self.reduced = 0

        def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            wrapped = trainer.strategy.model
            for ddp in [wrapped] if isinstance(wrapped, DistributedDataParallel) else module.ddp.values():
                ddp.register_comm_hook(None, self.count)

        def count(self, state, bucket):  # no annotations: DDP refuses the string ones of `from __future__`
            self.reduced += bucket.buffer().numel()
            return allreduce_hook(None, bucket)  # what DDP does without a hook: divide, then all-reduce

        def on_train_batch_start(self, *args) -> None:
            self.start = (time.perf_counter(), time.process_time())

        def on_train_batch_end(self, *args) -> None:
            self.wall.append(time.perf_counter() - self.start[0])
            self.cpu.append(time.process_time() - self.start[1])

    clock = Clock()
    devices = settings["devices"]
    trainer = L.Trainer(
        accelerator="cpu", devices=devices, strategy=settings["strategy"] if devices > 1 else "auto", max_epochs=1,
        limit_train_batches=settings["batches"], limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock], default_root_dir=out,
    )
    trainer.fit(model, datamodule=EmbeddedMNIST(batch_size=settings["batch_size"]))
    skip = settings["warmup"]
    result = {"wall": statistics.median(clock.wall[skip:]), "cpu": statistics.mean(clock.cpu[skip:]),
              "reduced": clock.reduced / len(clock.wall)}
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(result))
    if trainer.is_global_zero:
        torch.save(model.state_dict(), out / "weights.pt")


def fit(settings: dict, root: Path) -> tuple[dict, Path]:
    out = Path(tempfile.mkdtemp(dir=root))
    done = subprocess.run([sys.executable, __file__, "--worker", str(out), json.dumps(settings)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(settings["devices"])]
    return {"wall": max(r["wall"] for r in ranks), "cpu": statistics.mean(r["cpu"] for r in ranks), "reduced": ranks[0]["reduced"]}, out


def fastest(runs: list[tuple[dict, Path]]) -> tuple[dict, Path]:
    """The run of the lowest wall time, with the lowest CPU time of all runs."""
    best = min(runs, key=lambda run: run[0]["wall"])
    return {**best[0], "cpu": min(run[0]["cpu"] for run in runs)}, best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="runs per strategy, alternated; the fastest is kept")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args()
    import torch

    common = {"batches": args.batches, "warmup": args.warmup, "width": args.width, "batch_size": args.batch_size,
              "cores": sorted(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"Step time per batch (median wall ms; mean CPU ms per process; fastest of {args.repeats} alternated runs), 2 CPU processes, batch {args.batch_size} each, "
              f"width {args.width}, {args.batches - args.warmup} timed batches\n")
        print("| model | find_unused=True (Lightning) | per-network DDP (lit_gan) | new / old wall | gradients all-reduced per batch, old → new | max weight difference |")
        print("|---|---|---|---|---|---|")
        scaling = []
        for model in args.models:
            runs: dict[str, list] = {OLD: [], NEW: []}
            for _ in range(args.repeats):  # alternated, the fastest kept: the machine's load drifts
                for strategy in runs:
                    runs[strategy].append(fit({**common, "model": model, "devices": 2, "strategy": strategy}, root))
            (old, old_dir), (new, new_dir) = (fastest(runs[OLD]), fastest(runs[NEW]))
            a, b = torch.load(old_dir / "weights.pt"), torch.load(new_dir / "weights.pt")
            diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
            print(f"| {model} | {old['wall'] * 1e3:.1f} ms (CPU {old['cpu'] * 1e3:.1f}) | {new['wall'] * 1e3:.1f} ms "
                  f"(CPU {new['cpu'] * 1e3:.1f}) | {new['wall'] / old['wall']:.2f} | {old['reduced'] / 1e3:.0f}k → {new['reduced'] / 1e3:.0f}k | {diff:.1e} |")
            one, _ = fastest([fit({**common, "model": model, "devices": 1, "strategy": "auto"}, root) for _ in range(args.repeats)])
            scaling.append((model, one, new))
        print(f"\nScaling: 1 process against 2 (per-network DDP), batch {args.batch_size} per process\n")
        print("| model | 1 process: ms/batch | images/s | 2 processes: ms/batch | images/s | speed-up |")
        print("|---|---|---|---|---|---|")
        for model, one, two in scaling:
            ips1, ips2 = args.batch_size / one["wall"], 2 * args.batch_size / two["wall"]
            print(f"| {model} | {one['wall'] * 1e3:.1f} | {ips1:.0f} | {two['wall'] * 1e3:.1f} | {ips2:.0f} | {ips2 / ips1:.2f}x |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        worker(Path(sys.argv[2]), json.loads(sys.argv[3]))
    else:
        main()
