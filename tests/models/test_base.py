"""The one training loop: who moves when, the schedule, noise, the fixed grid, the contract."""

import ctypes
import inspect
import os
import re
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch

from lit_gan import hardware
from lit_gan.models import CDCGAN, DCGAN, GAN, R3GAN, is_adversarial, is_generative
from lit_gan.optim import EMA
from tests.conftest import LATENT, steps, tiny


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def batches(n=4, size=8, classes=10):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n * size, 1, 28, 28, generator=g) * 2 - 1
    y = torch.randint(0, classes, (n * size,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=size)


class Spy(DCGAN):
    """Records G's and D's parameters around each D step (wrapping the objective's D and G losses)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        d_loss, g_loss = self.objective.d_loss, self.objective.g_loss

        def spy_d_loss(step):
            self.after_d = None
            return d_loss(step)

        def spy_g_loss(step):  # runs after the D step, before G's
            self.after_d = (params(self.generator), params(self.discriminator))
            return g_loss(step)

        self.objective.d_loss, self.objective.g_loss = spy_d_loss, spy_g_loss

    def on_train_batch_start(self, batch, batch_idx):
        self.before = (params(self.generator), params(self.discriminator))

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.after_batch = (params(self.generator), params(self.discriminator))


def test_d_step_leaves_g_untouched_and_g_step_leaves_d_untouched(trainer_kwargs):
    model = tiny(Spy)
    L.Trainer(**{**trainer_kwargs, "limit_train_batches": 1}).fit(model, batches())
    g0, d0 = model.before
    g1, d1 = model.after_d
    g2, d2 = model.after_batch
    assert same(g0, g1) and not same(d0, d1)  # D step: only D moved
    assert same(d1, d2) and not same(g1, g2)  # G step: only G moved


def test_each_update_steps_with_its_own_loss_gradients_alone(trainer_kwargs, monkeypatch):
    """G's step freezes D (G's loss gives D no gradients); D's step needs no freezing of G, whose
    images it sees detached. At each optimizer step, the other network's gradients are as it left them."""
    from lit_gan.models.plumbing import DirectSteps

    grads = []  # at each optimizer step: (G's, D's) gradients
    step = DirectSteps.step

    def spying(self, module, optimizer):
        grads.append(tuple([None if p.grad is None else p.grad.clone() for p in net.parameters()]
                           for net in (module.generator, module.discriminator)))
        return step(self, module, optimizer)

    monkeypatch.setattr(DirectSteps, "step", spying)
    model = tiny(DCGAN)
    L.Trainer(**{**trainer_kwargs, "limit_train_batches": 2}).fit(model, batches())
    assert len(grads) == 4  # D, G, D, G
    (g_at_d1, d_at_d1), (g_at_g1, d_at_g1), (g_at_d2, _), _ = grads
    assert all(g is None for g in g_at_d1) and all(g is not None for g in d_at_d1)  # D's loss reached no G weight
    assert all(torch.equal(a, b) for a, b in zip(d_at_d1, d_at_g1))  # G's backward left D's gradients alone
    assert all(torch.equal(a, b) for a, b in zip(g_at_g1, g_at_d2))  # D's backward left G's alone
    assert all(p.requires_grad for net in (model.generator, model.discriminator) for p in net.parameters())


@pytest.mark.parametrize("d_steps,g_steps,expected_g_updates", [(1, 1, 4), (4, 1, 1), (2, 3, 6)])
def test_step_schedule_counts_batches(trainer_kwargs, d_steps, g_steps, expected_g_updates):
    model = tiny(DCGAN, **steps(DCGAN, d=d_steps, g=g_steps))
    trainer = L.Trainer(**trainer_kwargs)
    trainer.fit(model, batches())
    opt_g, opt_d = model.optimizers()
    assert model.batches_seen == 4
    assert opt_d.optimizer.state[next(model.discriminator.parameters())]["step"].item() == 4
    assert opt_g.optimizer.state[next(model.generator.parameters())]["step"].item() == expected_g_updates
    # Lightning's global_step counts optimizer steps, not batches (documented in models/base.py)
    assert trainer.global_step == 4 + expected_g_updates


def test_fixed_sample_noise_is_one_column_per_class_and_saved():
    model = tiny(CDCGAN, num_classes=10)
    assert model.grid_labels.tolist() == list(range(10)) * 8
    # one z along each row: the label alone changes the picture from column to column
    rows = model.grid_z.view(8, 10, -1)
    assert torch.equal(rows, rows[:, :1].expand_as(rows)) and not torch.equal(rows[0], rows[1])
    assert "grid_z" in model.state_dict() and "grid_labels" in model.state_dict()
    assert torch.equal(tiny(CDCGAN, num_classes=10).grid_z, model.grid_z)  # seeded
    images, columns = model.fixed_samples()
    assert images.shape == (80, 1, 28, 28) and columns == 10 and model.training  # mode restored


def test_the_contract_sees_a_modules_submodules_on_every_python():
    """Python >= 3.12 checks `isinstance(x, SomeRuntimeProtocol)` with `inspect.getattr_static`, which
    misses G and D (kept in `nn.Module._modules`): every GAN would fail `isinstance(gan, Adversarial)` there
    (seen on a GPU machine's Python 3.12: `Speed` refused DCGAN). lit_gan tests with getattr instead."""
    for model in (tiny(DCGAN), tiny(R3GAN)):
        with pytest.raises(AttributeError):
            inspect.getattr_static(model, "generator")  # what a protocol isinstance on 3.12 looks up
        assert is_adversarial(model) and is_generative(model)
    assert not is_adversarial(torch.nn.Linear(1, 1)) and not is_adversarial(L.LightningModule())
    package = Path(__file__).parents[2] / "lit_gan"
    uses = [f"{path.relative_to(package)}: {line.strip()}" for path in package.rglob("*.py")
            for line in path.read_text().splitlines() if re.search(r"isinstance\([^)]*(Generative|Adversarial)\)", line)]
    assert not uses, f"test the contract with is_generative / is_adversarial: {uses}"


@pytest.mark.parametrize("driver", [False, True])
def test_no_nvidia_driver_probe_in_every_optimizer_step_without_a_driver(trainer_kwargs, monkeypatch, driver):
    """Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1: each Adam step then tries to load NVML
    (about 0.1 ms on a machine without the driver). Without a driver lit_gan turns that probe off."""
    monkeypatch.setenv(hardware.NVML_CHECK, "1")
    monkeypatch.setattr(hardware, "nvml_loads", lambda: driver)
    loads: list[str] = []
    real = ctypes.CDLL
    monkeypatch.setattr(ctypes, "CDLL", lambda name, *args, **kwargs: loads.append(name) or real(name, *args, **kwargs))
    class Training(L.Callback):  # the loads while training: 3 batches, 6 optimizer steps
        def on_train_start(self, *args: object) -> None:
            loads.clear()

    L.Trainer(**{**trainer_kwargs, "limit_train_batches": 3, "callbacks": [Training()]}).fit(tiny(DCGAN), batches())
    assert os.environ[hardware.NVML_CHECK] == ("1" if driver else "0")  # a driver: Lightning's fork-safe check stays
    if not driver:
        assert not [name for name in loads if "nvidia-ml" in name], loads


def test_uniform_noise_lies_in_unit_box():
    z = tiny(GAN, latent={"noise": "uniform"}).sample_z(10_000)
    assert z.min() >= -1 and z.max() <= 1 and z.mean().abs() < 0.02 and z.std() == pytest.approx(3**-0.5, rel=0.05)


def test_the_model_contract():
    model = tiny(CDCGAN, num_classes=10, g={"final_activation": "sigmoid"})
    assert is_generative(model) and not is_generative(torch.nn.Linear(1, 1))
    assert (model.conditional, model.num_classes, model.value_range, model.noise) == (True, 10, (0.0, 1.0), "normal")
    assert tiny(DCGAN).value_range == (-1.0, 1.0) and tiny(DCGAN).sample_labels(3) is None
    seeded = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(model.sample_z(5, seeded()), model.sample_z(5, seeded())) and model.sample_z(5).shape == (5, LATENT)
    labels = model.sample_labels(1000, seeded())
    assert labels.min() == 0 and labels.max() == 9
    images = model.generate(labels=labels[:4])
    assert images.shape == (4, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_value_range_mismatch_with_the_data_is_explained():
    class Data:
        value_range = (-1.0, 1.0)

    with pytest.raises(ValueError, match=r"produces images in \[0.0, 1.0\].*value_range \[0.0, 1.0\]"):
        tiny(DCGAN, g={"final_activation": "sigmoid"}).check_data(Data())
    tiny(DCGAN).check_data(Data())  # matching ranges pass


def test_ema_weights_follow_the_decay_formula(trainer_kwargs):
    decay = 0.9
    model = tiny(DCGAN, ema=EMA(decay=decay))
    start = params(model.generator)
    assert same(start, params(model.generator_ema))
    L.Trainer(**{**trainer_kwargs, "limit_train_batches": 1}).fit(model, batches())
    for e, g0, g1 in zip(model.generator_ema.parameters(), start, model.generator.parameters()):
        torch.testing.assert_close(e, decay * g0 + (1 - decay) * g1)
    assert not same(start, params(model.generator))
    model.eval()  # outside training, samples come from the EMA generator
    z = torch.randn(2, LATENT)
    assert torch.equal(model.generate(z=z), model.generator_ema(z))


def test_only_the_ema_generator_may_start_training_in_eval_mode(trainer_kwargs):
    """The EMA generator is in eval mode on purpose; Lightning's "Found N module(s) in eval mode" warning
    stays for anything else left in eval mode."""
    def eval_mode_warnings(model: GAN) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            L.Trainer(**{**trainer_kwargs, "limit_train_batches": 1}).fit(model, batches())
        return [str(w.message) for w in caught if "in eval mode" in str(w.message)]

    model = tiny(DCGAN, ema=EMA(decay=0.9))
    assert not eval_mode_warnings(model) and not model.generator_ema.training
    model = tiny(DCGAN, ema=EMA(decay=0.9))
    model.discriminator.eval()  # a user's slip: Lightning keeps each module's mode, and warns
    assert eval_mode_warnings(model)


def test_ema_rampup_shortens_the_half_life_early_as_stylegan2_does(trainer_kwargs):
    model = tiny(DCGAN, ema=EMA(decay=0.999, rampup=0.05), **steps(DCGAN, d=2, g=3))
    decays = []
    for batches_seen in (1, 39, 10_000):  # G turns at batches 2, 40, 10_002: 3, 60, 15_003 G updates
        model.batches_seen = batches_seen
        decays.append(model.ema_decay_now())
    # half-life min(h, 0.05 x updates) in G updates, h = ln 0.5 / ln 0.999 = 693 updates
    assert decays == pytest.approx([0.5 ** (1 / 0.15), 0.5 ** (1 / 3.0), 0.999])
    assert tiny(DCGAN, ema=EMA(decay=0.999)).ema_decay_now() == 0.999  # no ramp-up: ema.decay throughout
    fresh = tiny(DCGAN, ema=EMA(decay=0.999, rampup=0.05))
    L.Trainer(**{**trainer_kwargs, "limit_train_batches": 1}).fit(fresh, batches())
    # first update: half-life 0.05 updates, decay 0.5^20 ~ 1e-6: the EMA is (almost) G itself
    for e, g in zip(fresh.generator_ema.parameters(), fresh.generator.parameters()):
        torch.testing.assert_close(e, g, atol=1e-5, rtol=0)


def test_ema_is_a_copy_of_the_generator_only():
    model = tiny(DCGAN, ema=EMA(decay=0.999))
    assert sum(p.numel() for p in model.generator_ema.parameters()) == sum(p.numel() for p in model.generator.parameters())
    assert not any(p.requires_grad for p in model.generator_ema.parameters())
    assert "generator_ema.project.0.weight" in model.state_dict()  # saved with checkpoints
    assert not any(m.training for m in model.generator_ema.modules())  # only ever sampled from
    model.train()
    assert model.generator.training and not any(m.training for m in model.generator_ema.modules())


def test_diff_augment_applies_to_d_inputs_in_training_only():
    model = tiny(DCGAN, objective={"augment": "translation,cutout,color"}).eval()  # eval: batch norm's statistics fixed
    x = torch.randn(4, 1, 28, 28)
    validation, training = model.step("val", x, x, None), model.step("d", x, x, None)
    torch.manual_seed(0)
    a = validation.judge(x).logits
    torch.manual_seed(1)
    assert torch.equal(a, validation.judge(x).logits)  # validation: no augmentation, deterministic
    torch.manual_seed(0)
    b = training.judge(x).logits
    torch.manual_seed(1)
    assert not torch.equal(b, training.judge(x).logits)  # training: augmented, differently per draw
    assert torch.equal(a, model.objective.judge(x, None, model.discriminator, augment=False).logits)


def test_validation_noise_is_seeded_by_epoch_and_batch_not_the_global_rng(trainer_kwargs):
    model = tiny(DCGAN)
    trainer = L.Trainer(**{**trainer_kwargs, "limit_val_batches": 2})
    logged = []
    for global_seed in (1, 2):  # whatever came before (a resume, another callback's draws)
        torch.manual_seed(global_seed)
        trainer.validate(model, batches(), verbose=False)
        logged.append({k: v.item() for k, v in trainer.callback_metrics.items()})
    assert logged[0] == logged[1] and "val/g_loss" in logged[0]
    before = torch.random.get_rng_state()
    with model._seeded(model._evaluation_seed(0)):
        drawn = torch.rand(3)
    assert torch.equal(before, torch.random.get_rng_state())  # the global RNG is left as it was
    with model._seeded(model._evaluation_seed(0)):
        assert torch.equal(drawn, torch.rand(3))


def test_seeding_on_cuda_seeds_and_restores_that_devices_generator(monkeypatch):
    """`_seeded` on a CUDA device (by structure, on CPU): the device's own generator is seeded inside
    and given back its state after, as `torch.random.fork_rng` would."""
    model, calls = tiny(DCGAN), []
    monkeypatch.setattr(type(model), "device", property(lambda self: torch.device("cuda", 1)))
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: calls.append(("get", device)) or "state of 1")
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: calls.append(("seed", seed)))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: calls.append(("set", state, device)))
    before = torch.random.get_rng_state()
    with model._seeded(7):
        calls.append(("inside", torch.equal(torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(7)))))
    assert calls == [("get", 1), ("seed", 7), ("inside", True), ("set", "state of 1", 1)]
    assert torch.equal(before, torch.random.get_rng_state())
