"""Every 2-process (gloo) run the suite checks, in one launch: importing torch and Lightning in two
processes costs more than the tiny fits, so the tests register jobs (`job`) and the first test that
needs them (`launch`) starts this script once; Lightning relaunches it for rank 1, and both ranks run
the same jobs in the same order, one Trainer after another, in the one process group.

Usage: python tests/integration/ddp_script.py OUT_DIR JOBS_JSON (the path of a JSON list of jobs)
Each job has a `name` (its outputs go to OUT_DIR/<name>) and a `kind`:
- "gan": a tiny GAN fit on 64 real digits (dealt to the processes in a fixed order). Settings: model,
  strategy, devices (1 or 2), batches, batch_size (per process), kwargs (model arguments), g / d
  (network options), scaler (16-mixed with a GradScaler, as on GPU), sync_batchnorm (layers only:
  SyncBatchNorm cannot run on CPU, so DDP's CPU guard is lifted for the job and no batch may be
  trained), global_noise (z from one table per batch that the processes split, so a single process
  with the global batch draws the same z; the single process then also reads the data in the
  processes' order). Each rank saves <name>/rank<r>.pt: its weights after the fit and what it saw
  while training, and rank 0 <name>/last.ckpt.
- "cli": `lit_gan.cli.main(["fit", *args, --trainer.default_root_dir=<name>/run])` as a user runs
  `lit-gan fit ... --trainer.strategy ddp --trainer.devices 2`; each rank saves
  OUT_DIR/<name>.rank<r>.pt (its world size, rank, strategy, precision, batches seen and weights),
  beside the job's folder so that the folder holds the run directory alone.
- "prepared": `tests/data/prepared_ddp_script.py`'s fit from a prepared folder (<name>/seen_<r>.pt).
Jobs with devices=1 run first, in the launching process only, before any process group exists.
Each rank writes OUT_DIR/<name>.done.rank<r> after each job: a failed job stops the launch (Lightning
ends both ranks), and the tests of the jobs finished before it still pass.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins import MixedPrecision
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import lit_gan.models  # noqa: E402
from tests.conftest import tiny  # noqa: E402
from tests.fixtures import real_digits  # noqa: E402

WORLD = 2  # the processes' count the data order and the noise table are laid out for
RUN_ENV = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS", "LIT_GAN_RUN_DIR")  # what one job may leave for the next
TIMEOUT = 900


# ----- the jobs, registered by the test modules, and the one launch ---------------------------
JOBS: dict[str, tuple[str, dict[str, Any]]] = {}
"""name -> (the test module that registered the job, the job)."""


ONE_PROCESS = "ddp_launch"
"""The pytest-xdist group of every test that reads the launch: they run in one pytest process, which
launches once (mark them `pytest.mark.xdist_group(ONE_PROCESS)`)."""


def job(owner: str, name: str, kind: str, **spec: Any) -> str:
    """Registers a job for the launch (at import: every collected module's jobs are known before any test runs)."""
    if name in JOBS and JOBS[name][0] != owner:
        raise ValueError(f"DDP job {name!r} is registered by {JOBS[name][0]} already")
    JOBS[name] = (owner, {"name": name, "kind": kind, **spec})
    return name


@dataclass
class Launch:
    out: Path
    jobs: list[str]
    returncode: int
    stdout: str
    stderr: str

    def check(self, name: str) -> Path:
        """The job's folder, after checking that every rank finished the job (a job that failed, or
        one after it, fails with the launch's stderr) and, once every job has, that the launch exited 0."""
        assert name in self.jobs, f"DDP job {name!r} was not launched ({self.jobs})"
        unfinished = [(n, r) for n in self.jobs for r in range(processes(JOBS[n][1])) if not (self.out / f"{n}.done.rank{r}").is_file()]
        assert not [r for n, r in unfinished if n == name], \
            f"DDP job {name!r} did not finish ({unfinished}); the launch exited {self.returncode}:\n{self.stderr[-3000:]}"
        assert unfinished or self.returncode == 0, f"the DDP launch exited {self.returncode}:\n{self.stderr[-3000:]}"
        return self.out / name

    def gan(self, name: str) -> list[dict]:
        """What each rank of a "gan" job saved (one entry per process)."""
        folder = self.check(name)
        return [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(processes(JOBS[name][1]))]

    def cli(self, name: str) -> list[dict]:
        """What each rank of a "cli" job recorded: [rank 0's, rank 1's]."""
        self.check(name)
        return [torch.load(self.out / f"{name}.rank{r}.pt", weights_only=False) for r in range(WORLD)]


def processes(spec: dict) -> int:
    """How many processes run the job: its `devices` setting ("gan" jobs), else 2."""
    return spec.get("settings", {}).get("devices", WORLD)


_LAUNCHED: list[Launch] = []


def launch(session: Any, tmp_path_factory: Any) -> Launch:
    """Runs, once per session, the jobs of every test module that has a selected test."""
    if not _LAUNCHED:
        selected = {getattr(getattr(item, "module", None), "__name__", None) for item in session.items}
        jobs = [spec for owner, spec in JOBS.values() if owner in selected]
        out = tmp_path_factory.mktemp("ddp")
        (out / "jobs.json").write_text(json.dumps(jobs))
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(out), str(out / "jobs.json")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=out,
                                env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:  # rank 1 too (it is in the launch's process group)
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            stderr += f"\nthe DDP launch timed out after {TIMEOUT} s"
        _LAUNCHED.append(Launch(out, [j["name"] for j in jobs], proc.returncode, stdout, stderr))
    return _LAUNCHED[0]


# ----- "gan" ---------------------------------------------------------------------------------
def digits(n: int, batch_size: int, devices: int, rank: int) -> TensorDataset:
    """`n` real digits in [-1, 1]: rank r of WORLD processes takes the samples r, r + WORLD, ...; one
    process (batch `WORLD * batch_size`) takes them in the order the processes see them together,
    batch by batch: rank 0's batch, then rank 1's."""
    images, labels = real_digits(n)
    images = torch.as_tensor(images).float().div(127.5).sub(1).unsqueeze(1)
    if devices == WORLD:
        order = list(range(rank, n, WORLD))
    else:
        order = [WORLD * (b * batch_size + i) + r for b in range(n // (WORLD * batch_size)) for r in range(WORLD) for i in range(batch_size)]
    return TensorDataset(images[order], torch.as_tensor(labels).long()[order])


def with_global_noise(cls: type) -> type:
    class GlobalNoise(cls):
        """Training z: rows [rank * n, (rank + 1) * n) of one N(0, I) table of world * n rows per batch."""

        def sample_z(self, n, generator=None):
            if generator is not None or not self.training:
                return super().sample_z(n, generator)
            world, rank = self.trainer.world_size, self.global_rank
            table = torch.randn(n * world, self.latent_dim, generator=torch.Generator().manual_seed(1000 + self.batches_seen))
            return table[rank * n : (rank + 1) * n].to(self.device)

    return GlobalNoise


class Record(L.Callback):
    """What the rank trains with, read once the strategy has wrapped the model, and a checkpoint."""

    def __init__(self, out: Path) -> None:
        self.out, self.info = out, {}

    def on_fit_start(self, trainer: L.Trainer, model: L.LightningModule) -> None:
        self.info.update(
            strategy=type(trainer.strategy).__name__,
            whole_module_ddp=isinstance(trainer.strategy.model, DistributedDataParallel),
            wrappers={name: (type(w).__name__, w.find_unused_parameters, w.module is getattr(model, name), w.broadcast_buffers)
                      for name, w in model.ddp.items()},
            norm_layers=norm_layers(model),
        )

    def on_train_end(self, trainer: L.Trainer, model: L.LightningModule) -> None:
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        self.info.update(scale=float(scaler.get_scale()) if scaler is not None else None, batches_seen=model.batches_seen,
                         metrics={k: float(v) for k, v in trainer.callback_metrics.items()})
        trainer.save_checkpoint(self.out / "last.ckpt")


def norm_layers(model: L.LightningModule) -> list[str]:
    return sorted({type(m).__name__ for m in model.modules() if "BatchNorm" in type(m).__name__})


def fit_gan(out: Path, spec: dict) -> None:
    settings = spec["settings"]
    torch.set_num_threads(1)
    devices, batch_size = settings.get("devices", 2), settings.get("batch_size", 8)
    rank = int(os.environ.get("LOCAL_RANK", 0))
    data = digits(64, batch_size, devices, rank)
    torch.manual_seed(rank)  # different initial weights per process: the strategy must broadcast rank 0's
    cls = getattr(lit_gan.models, settings["model"])
    if settings.get("global_noise"):
        cls = with_global_noise(cls)
    model = tiny(cls, settings.get("g"), settings.get("d"), num_classes=10, **settings.get("kwargs", {}))
    record = Record(out)
    plugins = [MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))] if settings.get("scaler") else []
    trainer = L.Trainer(
        default_root_dir=out, accelerator="cpu", devices=devices, strategy=settings.get("strategy", "gan_ddp"),
        sync_batchnorm=settings.get("sync_batchnorm", False), plugins=plugins, max_epochs=1,
        limit_train_batches=settings.get("batches", 4), limit_val_batches=0, use_distributed_sampler=False, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[record],
    )
    loader = DataLoader(data, batch_size=batch_size * (WORLD if devices == 1 else 1), shuffle=False)
    guard = DistributedDataParallel._passing_sync_batchnorm_handle
    if settings.get("sync_batchnorm"):  # torch's SyncBatchNorm runs on GPUs only: lift DDP's CPU guard to see
        DistributedDataParallel._passing_sync_batchnorm_handle = lambda self, module: None  # the layers (no forward runs)
    try:
        trainer.fit(model, loader)
    finally:
        DistributedDataParallel._passing_sync_batchnorm_handle = guard
    params = [name for name, _ in model.named_parameters()]  # G's, D's and the EMA generator's
    info = {**record.info, "norm_layers_after": norm_layers(model)}
    torch.save({"state": model.state_dict(), "params": params, "info": info}, out / f"rank{trainer.global_rank}.pt")


# ----- "cli", "prepared" ---------------------------------------------------------------------
def fit_cli(out: Path, spec: dict) -> None:
    from lit_gan.cli import main

    cli = main(["fit", *spec["args"], f"--trainer.default_root_dir={out / 'run'}"])
    trainer = cli.trainer
    info = {"world_size": trainer.world_size, "global_rank": trainer.global_rank, "strategy": type(trainer.strategy).__name__,
            "precision": trainer.precision, "batches_seen": getattr(cli.model, "batches_seen", trainer.global_step)}
    torch.save({"info": info, "state": cli.model.state_dict()}, out.parent / f"{out.name}.rank{trainer.global_rank}.pt")


def fit_prepared(out: Path, spec: dict) -> None:
    from tests.data.prepared_ddp_script import fit

    fit(out)


def setup_prepared(out: Path, spec: dict) -> None:
    from tests.data.prepared_ddp_script import write

    write(out / "prep")


KINDS = {"gan": fit_gan, "cli": fit_cli, "prepared": fit_prepared}
SETUP = {"prepared": setup_prepared}  # in the launching process, before rank 1 exists


def run(out: Path, jobs: list[dict]) -> None:
    launcher = os.environ.get("LOCAL_RANK", "0") == "0"  # rank 1 is started with LOCAL_RANK=1
    if launcher:  # as the test started it (rank 1 starts with rank 0's environment of that moment)
        (out / "env.json").write_text(json.dumps({key: os.environ.get(key) for key in RUN_ENV}))
    env = json.loads((out / "env.json").read_text())
    single = [j for j in jobs if processes(j) == 1]
    if launcher:
        for spec in jobs:
            (out / spec["name"]).mkdir()
            if spec["kind"] in SETUP:
                SETUP[spec["kind"]](out / spec["name"], spec)
    for spec in [*single, *(j for j in jobs if j not in single)]:
        if spec in single and not launcher:
            continue
        for key, value in env.items():  # e.g. the CLI's seed_everything, which a "gan" job's model would read
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        print(f"ddp_script: rank {os.environ.get('LOCAL_RANK', 0)} starts {spec['name']}", file=sys.stderr, flush=True)
        KINDS[spec["kind"]](out / spec["name"], spec)
        (out / f"{spec['name']}.done.rank{os.environ.get('LOCAL_RANK', 0)}").touch()


if __name__ == "__main__":
    run(Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text()))
