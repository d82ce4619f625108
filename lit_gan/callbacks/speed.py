"""`Speed`: a faster training step without touching the loop: channels_last and torch.compile."""

from __future__ import annotations

import inspect
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from lit_gan.models.contract import is_adversarial


class Speed(Callback):
    """Speed options for a GAN's generator and discriminator, e.g. in a config:

        trainer:
          callbacks:
            - class_path: lit_gan.callbacks.Speed
              init_args: {channels_last: true, compile: true}

    ``channels_last`` stores G's, D's (and the EMA's) weights in the channels_last memory format
    and hands D its images in it (convolutions then run NHWC); training matches the default
    format to float rounding.
    ``compile`` compiles G and D in place with ``nn.Module.compile`` (so checkpoint keys do not
    change) when fitting. The first training batch runs a trial D and G loss and backward pass
    through them (compiling both) and throws it away (gradients cleared, batch-norm statistics
    restored), so training is unchanged; if anything in it fails, one warning says so and G and D
    train uncompiled.

    Args:
        channels_last: channels_last memory format for G, D and D's inputs.
        compile: torch.compile G and D (fit only).
        compile_options: arguments of `torch.compile`, e.g. {mode: max-autotune, backend: inductor}.
    """

    def __init__(self, channels_last: bool = False, compile: bool = False, compile_options: dict[str, Any] | None = None) -> None:
        self.channels_last, self.compile = channels_last, compile
        self.compile_options = dict(compile_options or {})
        valid = [n for n in inspect.signature(torch.compile).parameters if n != "model"]
        unknown = sorted(set(self.compile_options) - set(valid))
        if unknown:
            raise ValueError(f"Speed: unknown compile_options {unknown}; torch.compile takes {', '.join(valid)}")
        self.compiled = False  # G and D are compiled and passed the first batch's trial step
        self._to_try = False
        self._hook: Any = None

    @staticmethod
    def networks(pl_module: L.LightningModule) -> tuple[nn.Module, nn.Module]:
        if not is_adversarial(pl_module):
            raise ValueError(f"Speed works on GANs (`lit_gan.models.Adversarial`: a model with a generator, a "
                             f"discriminator and their losses), not {type(pl_module).__name__}; remove the Speed callback for it")
        return pl_module.generator, pl_module.discriminator

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        g, d = self.networks(pl_module)
        if self.channels_last:
            for net in (g, d, pl_module.generator_ema):
                if net is not None:
                    net.to(memory_format=torch.channels_last)
            if self._hook is None:
                self._hook = d.register_forward_pre_hook(_channels_last_inputs)
        if self.compile and stage == "fit" and not self.compiled:
            try:
                g.compile(**self.compile_options)
                d.compile(**self.compile_options)
                self._to_try = True
            except Exception as error:  # torch.compile unavailable on this platform / Python
                self._give_up(g, d, error)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self._to_try:
            self._to_try = False
            self.compiled = self._trial_step(trainer, pl_module, batch)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _trial_step(self, trainer: L.Trainer, pl_module: Any, batch: Any) -> bool:
        """D's and G's losses and backward passes on this batch, compiled, with nothing kept."""
        g, d = self.networks(pl_module)
        buffers = [(b, b.detach().clone()) for net in (g, d) for b in net.buffers()]
        try:
            with torch.random.fork_rng(devices=[]), trainer.precision_plugin.forward_context():
                loss_d, _, loss_g = pl_module.losses(batch[0], batch[1])  # phase lookahead: no running statistics
                torch.autograd.backward([loss_d.float(), loss_g.float()])
        except Exception as error:  # a compiler missing or failing, an unsupported op (e.g. double backward)
            self._give_up(g, d, error)
            return False
        finally:
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)
            for p in pl_module.parameters():
                p.grad = None
        return True

    def _give_up(self, g: nn.Module, d: nn.Module, error: BaseException) -> None:
        for net in (g, d):
            net._compiled_call_impl = None  # back to the eager forward (the attribute nn.Module.compile sets)
        while (inner := getattr(error, "inner_exception", None) or error.__cause__) is not None:
            error = inner  # the compiler's own error, not torch's wrappers around it
        first = (str(error).strip().splitlines() or [""])[0]
        rank_zero_warn(f"Speed: torch.compile failed ({type(error).__name__}: {first[:300]}); G and D train "
                       "without it (remove compile: true to silence this)")


def _channels_last_inputs(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Images (4-D tensors) in the channels_last memory format."""
    return tuple(a.contiguous(memory_format=torch.channels_last) if isinstance(a, Tensor) and a.dim() == 4 else a
                 for a in args)
