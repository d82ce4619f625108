"""Data-parallel GAN training: one `DistributedDataParallel` per network.

Lightning's `DDPStrategy` wraps the whole LightningModule, so D's backward leaves G's parameters
without gradients and G's backward leaves D's: plain DDP stops ("parameters that were not used in
producing the loss") and `find_unused_parameters=True` walks the autograd graph after every
backward to find them. `GANDDPStrategy` wraps G and D separately, each with
`find_unused_parameters=False`, so every backward all-reduces the gradients of the one network it
trains, once:
- D's step calls D through its wrapper. The gradient penalty's `autograd.grad` (with respect to
  the images) fires no DDP hook; its double-backward part reaches D's weights in D's one backward.
- G's step calls G through its wrapper and D as the plain network (D is frozen then).
- The unrolled look-ahead copy of D is a plain network; `lit_gan.collective.average_gradients` syncs its steps.
- The EMA generator is never wrapped: G's weights are the same on every process, so is their average.
- Buffers (batch norm's running statistics) are not broadcast in every wrapper's forward
  (`broadcast_buffers=False`): after each training batch, rank 0's buffers of G, D and the EMA
  generator go to every process in one broadcast, so all processes hold rank 0's model whenever
  they validate, sample or save (rank 0's own training is the same as with whole-module DDP).
The wrappers are kept outside the module tree (in `GAN.ddp`), so checkpoints keep their keys.
Other LightningModules (the metrics' `Classifier`) get Lightning's whole-module DDP.

`--trainer.strategy ddp` (or `ddp_spawn`, `ddp_fork`, `ddp_notebook`) selects it in the CLI; in
Python pass `strategy=GANDDPStrategy()` or `strategy="gan_ddp"`. DDP options pass through, e.g.
`GANDDPStrategy(static_graph=True)`.
"""

from __future__ import annotations

from typing import Any

from lightning.fabric.strategies import _StrategyRegistry
from lightning.pytorch.overrides.distributed import _register_ddp_comm_hook, _sync_module_states
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from torch import Tensor

from lit_gan.models.contract import is_adversarial
from torch.distributed.distributed_c10d import _get_default_group
from torch.distributed.utils import _sync_params_and_buffers

NETWORKS = ("generator", "discriminator")
BUCKET_BYTES = 250 * 1024 * 1024  # as DDP's own broadcasts
START_METHODS = {"ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}
STRATEGIES = {name: f"gan_{name}" for name in START_METHODS}
"""Lightning's DDP names and the names of `GANDDPStrategy` with the same start method."""


class GANDDPStrategy(DDPStrategy):
    """DDP with G and D in separate `DistributedDataParallel` modules (see the module docstring)."""

    def configure_ddp(self) -> None:
        model = self.lightning_module
        if not is_adversarial(model):  # e.g. the metrics' Classifier: the whole module, as Lightning does
            super().configure_ddp()
            return
        _sync_module_states(model)  # rank 0's EMA and fixed noise too, which no wrapper covers
        self._ddp_kwargs.setdefault("broadcast_buffers", False)  # one broadcast per batch instead (sync_buffers)
        model.ddp = {name: self._setup_model(getattr(model, name)) for name in NETWORKS}
        self._register_ddp_hooks()

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        output = super().training_step(*args, **kwargs)
        # per step: the wrappers configure_ddp set on a GAN, not a whole protocol check
        if getattr(self.lightning_module, "ddp", None) and not self._ddp_kwargs["broadcast_buffers"]:
            self.sync_buffers()
        return output

    def sync_buffers(self) -> None:
        """Rank 0's buffers of G, D and the EMA generator to every process, in one coalesced broadcast."""
        model = self.lightning_module
        buffers: list[Tensor] = [b for net in (model.generator, model.discriminator, model.generator_ema) if net is not None
                                 for b in net.buffers()]
        _sync_params_and_buffers(_get_default_group(), buffers, BUCKET_BYTES, src=0)

    def _register_ddp_hooks(self) -> None:
        wrappers = self.lightning_module.ddp if is_adversarial(self.lightning_module) else None
        if not wrappers:
            super()._register_ddp_hooks()
        elif self.root_device.type == "cuda":  # DDP communication hooks need NCCL, as in Lightning
            for wrapper in wrappers.values():
                _register_ddp_comm_hook(wrapper, self._ddp_comm_state, self._ddp_comm_hook, self._ddp_comm_wrapper)

    def teardown(self) -> None:
        if is_adversarial(self.lightning_module):
            self.lightning_module.ddp = {}
        super().teardown()

    @classmethod
    def register_strategies(cls, strategy_registry: _StrategyRegistry) -> None:
        for name, start in START_METHODS.items():
            strategy_registry.register(STRATEGIES[name], cls, description=f"per-network DDP for GANs, start method {start!r}",
                                       start_method=start)


if "gan_ddp" not in StrategyRegistry:
    GANDDPStrategy.register_strategies(StrategyRegistry)
