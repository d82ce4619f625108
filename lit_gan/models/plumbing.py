"""Lightning's backward and optimizer step without its plumbing, when the plumbing would do nothing.

In manual optimization every `manual_backward` and `LightningOptimizer.step` passes through the
strategy and the precision plugin and calls three hooks (`on_before_backward`, `on_after_backward`,
`on_before_optimizer_step`) on every callback and on the module. With fp32 or bf16 on one device,
no profiler and no one listening to those hooks, all of it ends in `loss.backward()` and
`optimizer.step()`, at a cost per call that a small GAN on a GPU feels (bench/overhead.py: tiny row).
`DirectSteps` then makes those two calls itself, keeping Lightning's step count (`global_step`), and
the module's own `on_before_optimizer_step` (gradient clipping); otherwise it goes through Lightning.

Around every hook of every batch (about twenty), Lightning also enters its profiler's `profile`
context and sets the module's `_current_fx_name`; `QuietProfiler` and `fast_plain_setattr` make
those cost what they do: nothing, and an attribute assignment.

torch itself opens a profiler range (`record_function`, about 40 µs on a CPU even with no profiler
running) around every optimizer's `step` and `zero_grad`. When no profiler runs and no step hook
would run, `DirectSteps` calls the optimizer's own step and sets the gradients to None itself: the
same update, without the range (`bare_step`, `bare_zero_grad`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import lightning as L
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import Strategy
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import Tensor
from torch.optim import optimizer as torch_optimizer

HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
"""The callback hooks Lightning calls around each backward and optimizer step."""


def plumbing_adds_nothing(trainer: L.Trainer, module: L.LightningModule, own: type[L.LightningModule]) -> str | None:
    """None when Lightning's backward and optimizer step would only call `loss.backward()` and
    `optimizer.step()` (plus `own`'s `on_before_optimizer_step`); else the reason they would not."""
    strategy, precision = trainer.strategy, trainer.precision_plugin
    for method in ("pre_backward", "backward", "post_backward", "optimizer_step"):
        if getattr(type(strategy), method) is not getattr(Strategy, method):
            return f"the strategy {type(strategy).__name__} has its own {method}"
    if not (type(precision) is MixedPrecision and precision.scaler is None):  # bf16-mixed: only autocast, in the forward
        for method in ("pre_backward", "backward", "post_backward", "optimizer_step"):
            if getattr(type(precision), method) is not getattr(Precision, method):
                return f"the precision plugin {type(precision).__name__} has its own {method}"
    if not isinstance(trainer.profiler, PassThroughProfiler):
        return "a profiler times Lightning's hooks"
    for callback in trainer.callbacks:
        for hook in HOOKS:
            if is_overridden(hook, callback, parent=L.Callback):
                return f"the callback {type(callback).__name__} has {hook}"
    for hook in ("on_before_backward", "on_after_backward", "backward"):
        if is_overridden(hook, module, parent=L.LightningModule):
            return f"the module has {hook}"
    if type(module).on_before_optimizer_step is not own.on_before_optimizer_step:
        return "a subclass has on_before_optimizer_step"
    return None


class QuietProfiler(PassThroughProfiler):
    """Lightning's default profiler (it records nothing), without the generator-based context manager
    its `profile` builds around each hook call: one shared `nullcontext` instead."""

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:  # type: ignore[override]
        return self._nothing


def quiet_profiler(trainer: L.Trainer) -> None:
    """Lightning's default profiler becomes a `QuietProfiler`; a profiler the user chose is kept."""
    if type(trainer.profiler) is PassThroughProfiler:
        trainer.profiler = QuietProfiler()


PLAIN = frozenset({str, int, float, bool, type(None)})
"""Types that are never a Parameter, buffer or Module: nn.Module's `__setattr__` would only store them."""


def fast_plain_setattr(module: torch.nn.Module, name: str, value: Any) -> bool:
    """Sets `name` as object.__setattr__ does and returns True when nn.Module's `__setattr__` would do
    just that (a str/number/bool/None replacing an attribute the instance already holds), skipping its
    three isinstance checks (two of them in Python); else returns False."""
    if type(value) in PLAIN and name in module.__dict__:
        object.__setattr__(module, name, value)
        return True
    return False


def moved_batch(batch: Any, device: torch.device | str) -> Any | None:
    """A tuple or list of plain tensors (the usual batch: images, labels) on `device`, as Lightning's
    `transfer_batch_to_device` would move it (non-blocking but to a CPU or MPS device), without its
    walk over every collection type; None for any other batch (Lightning's own transfer then)."""
    if type(batch) not in (tuple, list) or not all(type(t) is Tensor for t in batch):
        return None
    non_blocking = isinstance(device, torch.device) and device.type not in ("cpu", "mps")
    return type(batch)(t.to(device, non_blocking=non_blocking) for t in batch)


def ranges_unseen(optimizer: torch.optim.Optimizer) -> bool:
    """True when torch's wrapper around `optimizer.step` and `zero_grad` would only open a profiler
    range nobody records: no profiler runs, no step hook is registered (on the optimizer or globally),
    and nothing wraps this optimizer's own `step` (an LR scheduler counts its calls that way)."""
    return not (torch._C._autograd._profiler_enabled() or "step" in vars(optimizer)
                or optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
                or torch_optimizer._global_optimizer_pre_hooks or torch_optimizer._global_optimizer_post_hooks)


def bare_step(optimizer: torch.optim.Optimizer) -> Any:
    """`optimizer.step()`: its class's own step, past the profiling wrapper torch installs on every
    optimizer class (`Optimizer.profile_hook_step`), when `ranges_unseen`; else through it."""
    step = type(optimizer).step
    own = getattr(step, "__wrapped__", None) if getattr(step, "hooked", False) else None
    return own(optimizer) if own is not None and ranges_unseen(optimizer) else optimizer.step()


def bare_zero_grad(optimizer: torch.optim.Optimizer) -> None:
    """`optimizer.zero_grad(set_to_none=True)`: each parameter's gradient set to None, without the
    profiler range around it when `ranges_unseen`."""
    if not ranges_unseen(optimizer):
        return optimizer.zero_grad(set_to_none=True)
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = None


class DirectSteps:
    """`backward(loss)`, `zero_grad(optimizer)` and `step(optimizer)` for a manually optimized module:
    straight to torch when `plumbing_adds_nothing`, through Lightning otherwise. Decided once per fit
    (`on_train_start`)."""

    def __init__(self) -> None:
        self.direct = False
        self.reason: str | None = "not started"

    def decide(self, trainer: L.Trainer, module: L.LightningModule, own: type[L.LightningModule]) -> None:
        self.reason = plumbing_adds_nothing(trainer, module, own)
        self.direct = self.reason is None

    def backward(self, module: L.LightningModule, loss: Tensor) -> None:
        if self.direct:
            loss.backward()
        else:
            module.manual_backward(loss)

    def zero_grad(self, optimizer: LightningOptimizer) -> None:
        if self.direct:
            return bare_zero_grad(optimizer.optimizer)
        optimizer.zero_grad(set_to_none=True)

    def step(self, module: L.LightningModule, optimizer: LightningOptimizer) -> Any:
        if not self.direct:
            return optimizer.step()
        optimizer._on_before_step()  # Lightning's count of optimizer steps: global_step
        module.on_before_optimizer_step(optimizer.optimizer)
        out = bare_step(optimizer.optimizer)
        optimizer._on_after_step()
        return out
