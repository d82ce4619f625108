"""The training step's backward and optimizer steps skip Lightning's plumbing only when it would do nothing.

One fit through Lightning (a callback listens to the backward hooks) and one direct must train the
same weights, count the same `global_step` and clip gradients alike; anything that gives the
plumbing work to do (a hook, a profiler, a scaler, a strategy of its own) keeps Lightning's path.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.profilers import SimpleProfiler
from lightning.pytorch.strategies import DDPStrategy

from lit_gan.models import DCGAN, GAN, WGANGP
from lit_gan.models.plumbing import QuietProfiler, bare_step, bare_zero_grad, moved_batch, plumbing_adds_nothing, ranges_unseen
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
def test_the_direct_path_trains_exactly_as_lightnings(variant: type[GAN], flags: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(1)
    direct = tiny(variant)
    through = tiny(variant)
    through.load_state_dict(direct.state_dict())
    listener = Listener()
    opened = count_ranges(monkeypatch)
    t_direct = fit(direct, [], **flags)
    optimizer_ranges = [name for name in opened if name.startswith("Optimizer.")]
    t_through = fit(through, [listener], **flags)
    assert optimizer_ranges == []  # the direct path's updates open no profiler range (`bare_step`, `bare_zero_grad`)
    assert any(name.startswith("Optimizer.step#") for name in opened)  # through Lightning: torch's wrapper

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


def adam_pair() -> tuple[list[torch.nn.Parameter], torch.optim.Optimizer, list[torch.nn.Parameter], torch.optim.Optimizer]:
    """Two identical parameter sets with an Adam each, gradients set."""
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(2))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    for p, q in zip(a, b):
        p.grad = torch.randn_like(p)
        q.grad = p.grad.clone()
    return a, torch.optim.Adam(a, lr=0.1), b, torch.optim.Adam(b, lr=0.1)


def count_ranges(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the profiler ranges (`record_function`) opened from now on."""
    opened: list[str] = []
    enter = torch.autograd.profiler.record_function.__enter__

    def counting(self: torch.autograd.profiler.record_function) -> Any:
        opened.append(self.name)
        return enter(self)

    monkeypatch.setattr(torch.autograd.profiler.record_function, "__enter__", counting)
    return opened


def test_bare_steps_update_as_torchs_without_its_profiler_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    a, bare, b, through = adam_pair()
    opened = count_ranges(monkeypatch)
    for _ in range(3):
        bare_step(bare)
        bare_zero_grad(bare)
        for p in a:
            p.grad = torch.ones_like(p)
    assert opened == []  # the class's own step and the gradients set to None, with no range around them
    for _ in range(3):
        through.step()
        through.zero_grad(set_to_none=True)
        for p in b:
            p.grad = torch.ones_like(p)
    assert opened.count("Optimizer.step#Adam.step") == 3 and opened.count("Optimizer.zero_grad#Adam.zero_grad") == 3
    for p, q in zip(a, b):
        assert torch.equal(p, q)
    assert bare.state_dict()["state"][0]["step"] == through.state_dict()["state"][0]["step"] == 3


def test_bare_steps_go_through_torch_when_something_would_see_the_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    _, hooked, _, scheduled = adam_pair()
    calls: list[str] = []
    hooked.register_step_pre_hook(lambda opt, args, kwargs: calls.append("pre"))
    hooked.register_step_post_hook(lambda opt, args, kwargs: calls.append("post"))
    bare_step(hooked)
    assert calls == ["pre", "post"]

    torch.optim.lr_scheduler.StepLR(scheduled, step_size=1)  # counts the optimizer's steps through its own wrapper
    scheduled._opt_called = False
    bare_step(scheduled)
    assert scheduled._opt_called  # no "lr_scheduler.step() before optimizer.step()" warning

    _, plain, _, _ = adam_pair()
    assert ranges_unseen(plain)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        assert not ranges_unseen(plain)
        bare_step(plain)
        bare_zero_grad(plain)
    names = {event.name for event in profile.events()}
    assert {"Optimizer.step#Adam.step", "Optimizer.zero_grad#Adam.zero_grad"} <= names
    assert all(p.grad is None for p in plain.param_groups[0]["params"])


def test_a_batch_of_tensors_moves_by_the_short_path_and_anything_else_by_lightnings(monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = torch.zeros(2, 1, 4, 4), torch.tensor([1, 2])
    cpu = moved_batch((images, labels), torch.device("cpu"))
    assert type(cpu) is tuple and cpu[0] is images and cpu[1] is labels  # already there: the same tensors
    seen: list[dict[str, Any]] = []
    to = torch.Tensor.to

    def recording(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        seen.append(kwargs)
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", recording)
    meta = moved_batch([images, labels], torch.device("meta"))  # an accelerator's device, by structure
    assert type(meta) is list and all(t.device.type == "meta" for t in meta)
    assert seen == [{"non_blocking": True}] * 2  # as Lightning: non-blocking except to a CPU or MPS device
    assert moved_batch({"images": images}, torch.device("cpu")) is None
    assert moved_batch((images, [1, 2]), torch.device("cpu")) is None

    model = tiny(DCGAN)
    moved = model.transfer_batch_to_device({"images": images, "labels": labels}, torch.device("meta"), 0)
    assert moved["images"].device.type == "meta"  # other batches: Lightning's transfer


def test_the_short_path_leaves_a_datamodules_fit_quiet() -> None:
    from lightning.pytorch.trainer.connectors.data_connector import warning_cache

    class Data(L.LightningDataModule):
        def train_dataloader(self) -> Any:
            return batches(n=2)

    warning_cache.clear()  # Lightning warns once per process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer_with(max_epochs=1, enable_model_summary=False).fit(tiny(DCGAN), datamodule=Data())
    assert not [w for w in caught if "transfer_batch_to_device" in str(w.message)]
