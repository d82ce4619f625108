"""Lightning's `accumulate_grad_batches` and gradient clipping, done by the GAN loop itself
(Lightning refuses both for manual optimization)."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import GradientAccumulationScheduler
from torch.utils.data import DataLoader, TensorDataset

from lit_gan.models import DCGAN, GAN, R3GAN, WGANGP
from lit_gan.optim import Optim
from tests.conftest import steps, tiny

IMAGES = 32


class Digits(L.LightningDataModule):
    """32 fixed random 'images' in [-1, 1] with labels, in a fixed order (no shuffle)."""

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.data = TensorDataset(torch.rand(IMAGES, 1, 28, 28, generator=g) * 2 - 1, torch.randint(0, 10, (IMAGES,), generator=g))
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=self.batch_size, shuffle=False)


def fit(model: GAN, batch_size: int, batches: int, **flags: Any) -> GAN:
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=batches, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, **flags)
    trainer.fit(model, datamodule=Digits(batch_size))
    return model


NO_BATCH_STATISTICS = {  # networks whose output for a sample does not depend on the rest of its batch
    "DCGAN": lambda: tiny(DCGAN, g={"norm": "none"}, d={"norm": "none"}, num_classes=10),
    "WGANGP": lambda: tiny(WGANGP, g={"norm": "none"}, num_classes=10, **steps(WGANGP, d=2)),
    "R3GAN": lambda: tiny(R3GAN, num_classes=10),
}


@pytest.mark.parametrize("name", list(NO_BATCH_STATISTICS))
def test_micro_batches_train_exactly_as_one_batch(name: str):
    """4 batches of 8 and 4 x 2 micro-batches of 4 give the same weights (fp32, 2e-6 after 4 updates;
    the sums only run in another order). Covers the gradient penalty (WGAN-GP, with a G update
    every 2nd batch), R1 + R2 and the relativistic loss (R3GAN), the EMA of G."""
    torch.manual_seed(0)
    whole = fit(NO_BATCH_STATISTICS[name](), batch_size=8, batches=4)
    torch.manual_seed(0)
    micro = fit(NO_BATCH_STATISTICS[name](), batch_size=4, batches=8, accumulate_grad_batches=2)
    assert whole.batches_seen == micro.batches_seen == 4
    a, b = whole.state_dict(), micro.state_dict()
    worst = max((a[k] - b[k]).abs().max().item() for k in a if a[k].is_floating_point())
    assert worst < 2e-6, worst
    assert any(not torch.equal(v, tiny_init) for v, tiny_init in zip(a.values(), NO_BATCH_STATISTICS[name]().state_dict().values()))


def test_a_schedule_of_accumulation_is_followed_and_a_short_last_group_still_steps():
    """Lightning's GradientAccumulationScheduler works with the GAN loop; 5 loader batches with N=2
    make 3 updates (the epoch's last, single micro-batch steps too)."""
    model = tiny(DCGAN, num_classes=10)
    fit(model, batch_size=4, batches=5, callbacks=[GradientAccumulationScheduler({0: 2})])
    assert model.batches_seen == 3 and model._micro_batches == []


def test_an_interrupted_accumulation_is_kept_in_the_checkpoint():
    model = tiny(DCGAN, num_classes=10)
    pending = [(torch.randn(4, 1, 28, 28), torch.arange(4))]
    model._micro_batches = list(pending)
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    resumed = tiny(DCGAN, num_classes=10)
    resumed.on_load_checkpoint(checkpoint)
    assert len(resumed._micro_batches) == 1 and all(torch.equal(x, y) for x, y in zip(resumed._micro_batches[0], pending[0]))


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_gradient_clipping_bounds_each_update_and_logs_the_norm(algorithm: str):
    """With SGD an update is lr x gradient, so the clipped gradient is visible in the weights."""
    sgd = Optim(name="sgd", lr=1.0)
    torch.manual_seed(0)
    model = tiny(DCGAN, num_classes=10, opt_g=sgd, opt_d=sgd)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norms: list[float] = []

    class Norms(L.Callback):
        def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
            norms.append(float(trainer.callback_metrics["train/grad_norm_d"]))

    fit(model, batch_size=8, batches=1, gradient_clip_val=1e-3, gradient_clip_algorithm=algorithm, callbacks=[Norms()])
    after = model.state_dict()
    for net in ("discriminator", "generator"):
        keys = [k for k in before if k.startswith(f"{net}.") and before[k].is_floating_point() and "running" not in k]
        delta = torch.cat([(after[k] - before[k]).flatten() for k in keys])
        size = delta.norm() if algorithm == "norm" else delta.abs().max()
        assert 0 < size <= 1e-3 * (1 + 1e-4), (net, size)
    assert norms and norms[0] > 1e-2  # the logged norm is the one before clipping


def test_under_ddp_only_the_last_micro_batch_synchronises():
    """Structurally, on CPU: each network's wrapper (`GAN.ddp`, as GANDDPStrategy sets it) is asked
    for `no_sync` on every micro-batch but the last of each update."""
    import contextlib

    from torch import nn

    class Wrapper(nn.Module):  # stands in for DistributedDataParallel
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module, self.unsynced = module, 0

        def forward(self, *args: Any) -> Any:
            return self.module(*args)

        @contextlib.contextmanager
        def no_sync(self):
            self.unsynced += 1
            yield

    model = tiny(DCGAN, num_classes=10)
    model.ddp = {"generator": Wrapper(model.generator), "discriminator": Wrapper(model.discriminator)}
    fit(model, batch_size=4, batches=6, accumulate_grad_batches=3)  # 2 updates of 3 micro-batches
    assert model.batches_seen == 2
    assert model.ddp["discriminator"].unsynced == model.ddp["generator"].unsynced == 2 * 2
