"""The training step's backward and optimizer steps skip Lightning's plumbing only when it would do nothing.

One fit through Lightning (a callback listens to the backward hooks) and one direct must train the
same weights, count the same `global_step` and clip gradients alike; anything that gives the
plumbing work to do (a hook, a profiler, a scaler, a strategy of its own) keeps Lightning's path.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.profilers import SimpleProfiler
from lightning.pytorch.strategies import DDPStrategy

from lit_gan.models import DCGAN, GAN, WGANGP
from lit_gan.models.plumbing import QuietProfiler, plumbing_adds_nothing
from tests.conftest import tiny
from tests.models.test_base import batches


class Listener(L.Callback):
    """Counts the hooks Lightning calls around backward and optimizer steps."""

    def __init__(self) -> None:
        self.calls = {"on_before_backward": 0, "on_after_backward": 0, "on_before_optimizer_step": 0}

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        self.calls["on_before_backward"] += 1

    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.calls["on_after_backward"] += 1

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        self.calls["on_before_optimizer_step"] += 1


def fit(model: GAN, callbacks: list[L.Callback], **flags: Any) -> L.Trainer:
    torch.manual_seed(0)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks, **flags)
    trainer.fit(model, batches(n=4))
    return trainer


@pytest.mark.parametrize("variant, flags", [
    (DCGAN, {}),
    (WGANGP, {"gradient_clip_val": 0.05}),  # clipping is the module's own hook: it runs on both paths
])
def test_the_direct_path_trains_exactly_as_lightnings(variant: type[GAN], flags: dict[str, Any]) -> None:
    torch.manual_seed(1)
    direct = tiny(variant)
    through = tiny(variant)
    through.load_state_dict(direct.state_dict())
    listener = Listener()
    t_direct, t_through = fit(direct, [], **flags), fit(through, [listener], **flags)

    assert direct._steps.direct and direct._steps.reason is None
    assert not through._steps.direct and "Listener has on_before_backward" in through._steps.reason
    d_steps = 4  # one D update per batch; WGAN-GP's G steps every 5th D step
    g_steps = 4 // direct.opt_d.steps
    assert listener.calls == {"on_before_backward": d_steps + g_steps, "on_after_backward": d_steps + g_steps,
                              "on_before_optimizer_step": d_steps + g_steps}
    assert t_direct.global_step == t_through.global_step == d_steps + g_steps
    progress = [t.fit_loop.epoch_loop.manual_optimization.optim_step_progress.total for t in (t_direct, t_through)]
    assert progress[0].ready == progress[1].ready == progress[0].completed == d_steps + g_steps
    for (name, a), b in zip(direct.state_dict().items(), through.state_dict().values()):
        assert torch.equal(a, b), name
    if flags:  # the norms before clipping were logged by both
        assert direct.trainer.callback_metrics.keys() >= {"train/grad_norm_d"}


def trainer_with(**flags: Any) -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     **flags)


@pytest.mark.parametrize("flags, reason", [
    ({}, None),
    ({"precision": "bf16-mixed"}, None),  # autocast is the forward's; backward and step are plain
    ({"precision": "bf16-true"}, None),
    ({"plugins": [MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))]}, "MixedPrecision has its own pre_backward"),
    ({"profiler": "simple"}, "a profiler"),
    ({"callbacks": [Listener()]}, "Listener has on_before_backward"),
    ({"strategy": DDPStrategy(process_group_backend="gloo")}, "DDPStrategy has its own pre_backward"),
])
def test_anything_that_gives_the_plumbing_work_keeps_lightnings_path(flags: dict[str, Any], reason: str | None) -> None:
    found = plumbing_adds_nothing(trainer_with(**flags), tiny(DCGAN), GAN)
    assert found == reason if reason is None else reason in found


def test_a_module_that_listens_keeps_lightnings_path() -> None:
    class Listening(DCGAN):
        def on_after_backward(self) -> None:
            pass

    class Clipping(DCGAN):
        def on_before_optimizer_step(self, optimizer: Any) -> None:
            pass

    assert "on_after_backward" in plumbing_adds_nothing(trainer_with(), tiny(Listening), GAN)
    assert "on_before_optimizer_step" in plumbing_adds_nothing(trainer_with(), tiny(Clipping), GAN)


def test_lightnings_default_profiler_goes_quiet_and_a_chosen_one_still_times_every_hook() -> None:
    quiet, timed = fit(tiny(DCGAN), []), fit(tiny(DCGAN), [], profiler="simple")
    assert type(quiet.profiler) is QuietProfiler
    assert quiet.profiler.profile("a") is quiet.profiler.profile("b")  # no context manager built per hook
    assert type(timed.profiler) is SimpleProfiler
    hooks = timed.profiler.recorded_durations
    assert len(hooks["[LightningModule]DCGAN.on_train_batch_start"]) == len(hooks["[Strategy]SingleDeviceStrategy.training_step"]) == 4


def test_plain_attributes_skip_nn_modules_checks_and_the_rest_still_register(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    module_setattr = torch.nn.Module.__setattr__

    def counting(self: torch.nn.Module, name: str, value: Any) -> None:
        seen.append(name)
        module_setattr(self, name, value)

    monkeypatch.setattr(torch.nn.Module, "__setattr__", counting)
    model = tiny(DCGAN)
    seen.clear()
    fit(model, [])
    assert "_current_fx_name" not in seen  # set ~40 times a batch by Lightning, never through nn.Module's checks

    model.note = "a"
    model.note = "b"  # a plain value replacing a plain attribute: stored directly
    assert model.note == "b" and "note" in model.__dict__ and seen.count("note") == 1
    model.note = torch.nn.Linear(1, 1)  # a module under a plain attribute's name still registers
    assert "note" in model._modules and "note" not in model.__dict__
    model.scale = 1.0
    model.scale = torch.nn.Parameter(torch.ones(1))
    assert "scale" in model._parameters and "scale" not in model.__dict__
    model.automatic_optimization = True  # a property still runs its setter
    assert model._automatic_optimization is True and "automatic_optimization" not in model.__dict__


def test_the_training_steps_signature_lightning_reads_every_batch_is_kept_and_true() -> None:
    from lightning.pytorch.utilities.signature_utils import is_param_in_hook_signature

    step = GAN.training_step
    code = step.__code__
    assert "__signature__" in vars(step)  # computed once, not per batch
    assert tuple(step.__signature__.parameters) == code.co_varnames[:code.co_argcount]  # the function's own
    assert is_param_in_hook_signature(tiny(DCGAN).training_step, "batch_idx", min_args=2)  # Lightning passes batch_idx
