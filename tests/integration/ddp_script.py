"""Run by test_distributed.py (Lightning relaunches it for rank 1): a tiny GAN fit on 64 real digits
(dealt to the processes in a fixed order), and what each rank ends with.

Usage: python tests/integration/ddp_script.py OUT_DIR '{"model": "WGANGP", "strategy": "gan_ddp", ...}'
Settings: model, strategy, devices (1 or 2), batches, batch_size (per process), kwargs (model arguments),
g / d (network options), scaler (16-mixed with a GradScaler, as on GPU), sync_batchnorm (layers only:
SyncBatchNorm cannot run on CPU, so DDP's CPU guard is lifted and no batch may be trained),
global_noise (z from one table per batch that the processes split, so a single process with the
global batch draws the same z; the single process then also reads the data in the processes' order).
Each rank saves OUT_DIR/rank<r>.pt: its weights after the fit and what it saw while training.
"""

import json
import os
import sys
from pathlib import Path

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
            table = torch.randn(n * world, self.hparams.latent_dim, generator=torch.Generator().manual_seed(1000 + self.batches_seen))
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


def main(out: Path, settings: dict) -> None:
    torch.set_num_threads(1)
    if settings.get("sync_batchnorm"):  # torch's SyncBatchNorm runs on GPUs only: lift DDP's CPU guard to see
        DistributedDataParallel._passing_sync_batchnorm_handle = lambda self, module: None  # the layers (no forward runs)
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
    trainer.fit(model, loader)
    params = [name for name, _ in model.named_parameters()]  # G's, D's and the EMA generator's
    info = {**record.info, "norm_layers_after": norm_layers(model)}
    torch.save({"state": model.state_dict(), "params": params, "info": info}, out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]))
