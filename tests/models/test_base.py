import lightning as L
import pytest
import torch

from lit_gan.models import CDCGAN, CGAN, DCGAN, GAN
from lit_gan.optim import Optim
from tests.conftest import TINY


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


class Spy(DCGAN):
    """Records G's and D's parameters around each D step."""

    def on_train_batch_start(self, batch, batch_idx):
        self.before = (params(self.generator), params(self.discriminator))

    def after_discriminator_step(self):
        self.after_d = (params(self.generator), params(self.discriminator))

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.after_batch = (params(self.generator), params(self.discriminator))


def batches(n=4, size=8, classes=10):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n * size, 1, 28, 28, generator=g) * 2 - 1
    y = torch.randint(0, classes, (n * size,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=size)


def test_d_step_leaves_g_untouched_and_g_step_leaves_d_untouched(trainer_kwargs):
    model = Spy(**TINY)
    L.Trainer(**{**trainer_kwargs, "limit_train_batches": 1}).fit(model, batches())
    g0, d0 = model.before
    g1, d1 = model.after_d
    g2, d2 = model.after_batch
    assert same(g0, g1) and not same(d0, d1)  # D step: only D moved
    assert same(d1, d2) and not same(g1, g2)  # G step: only G moved


@pytest.mark.parametrize("d_steps,g_steps,expected_g_updates", [(1, 1, 4), (4, 1, 1), (2, 3, 6)])
def test_step_schedule_counts_batches(trainer_kwargs, d_steps, g_steps, expected_g_updates):
    model = DCGAN(d_steps=d_steps, g_steps=g_steps, **TINY)
    trainer = L.Trainer(**trainer_kwargs)
    trainer.fit(model, batches())
    opt_g, opt_d = model.optimizers()
    assert model.batches_seen == 4
    assert opt_d.optimizer.state[next(model.discriminator.parameters())]["step"].item() == 4
    assert opt_g.optimizer.state[next(model.generator.parameters())]["step"].item() == expected_g_updates
    # Lightning's global_step counts optimizer steps, not batches (documented in models/base.py)
    assert trainer.global_step == 4 + expected_g_updates


@pytest.mark.parametrize("cls", [GAN, CGAN, DCGAN, CDCGAN])
def test_every_variant_trains_and_changes_both_networks(trainer_kwargs, cls):
    model = cls(num_classes=10, **TINY)
    g0, d0 = params(model.generator), params(model.discriminator)
    L.Trainer(**trainer_kwargs).fit(model, batches())
    assert not same(g0, params(model.generator)) and not same(d0, params(model.discriminator))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_variant_defaults():
    assert DCGAN().hparams.arch == "dcgan" and DCGAN().opt_d == Optim(lr=2e-4, betas=(0.5, 0.999))
    assert GAN().hparams.arch == "mlp" and GAN().hparams.width == 128
    assert CDCGAN(num_classes=10).conditional and not DCGAN().conditional
    assert CGAN(num_classes=10).hparams.arch == "mlp"


def test_fixed_sample_noise_is_one_column_per_class_and_saved():
    model = CDCGAN(num_classes=10, **TINY)
    assert model.sample_labels.tolist() == list(range(10)) * 8
    # one z along each row: the label alone changes the picture from column to column
    rows = model.sample_z.view(8, 10, -1)
    assert torch.equal(rows, rows[:, :1].expand_as(rows)) and not torch.equal(rows[0], rows[1])
    assert "sample_z" in model.state_dict() and "sample_labels" in model.state_dict()
    assert torch.equal(CDCGAN(num_classes=10, **TINY).sample_z, model.sample_z)  # seeded


def test_uniform_noise_lies_in_unit_box():
    z = GAN(noise="uniform", **TINY)._noise(10_000)
    assert z.min() >= -1 and z.max() <= 1 and z.mean().abs() < 0.02 and z.std() == pytest.approx(3**-0.5, rel=0.05)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"label_flip": 1.5}, "label_flip is a probability"),
        ({"d_dropout": -0.1}, "d_dropout is a probability"),
        ({"d_steps": 0}, "d_steps must be a positive integer"),
        ({"arch": "resnet"}, "unknown arch"),
        ({"loss": "wasserstein", "label_flip": 0.1}, "logistic D"),
        ({"conditional": True, "num_classes": 0}, "needs labelled data"),
    ],
)
def test_bad_hyperparameters_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GAN(**kwargs)


@pytest.mark.parametrize("kwargs", [{"lr": -1e-3}, {"lr": 0.0}, {"betas": (0.5, 1.2)}, {"name": "adagrad"}])
def test_bad_optimizer_settings_are_explained(kwargs):
    with pytest.raises(ValueError, match="learning rate|betas|optimizer name"):
        Optim(**kwargs)


def test_label_flip_reaches_the_discriminator_targets(monkeypatch):
    seen = {}
    import lit_gan.losses as losses

    original = losses.discriminator_targets

    def spy(n, real, flip=0.0, smoothing=0.0, device="cpu"):
        seen[real] = (flip, smoothing)
        return original(n, real, flip, smoothing, device)

    monkeypatch.setattr(losses, "discriminator_targets", spy)
    model = DCGAN(label_flip=0.1, label_smoothing=0.2, **TINY)
    model.discriminator_loss(torch.zeros(4, 1, 28, 28), torch.zeros(4, 1, 28, 28), None)
    assert seen == {True: (0.1, 0.2), False: (0.1, 0.2)}
