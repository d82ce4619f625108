"""Speed: channels_last G/D (same training to tolerance), torch.compile in place (same keys, same
training) with one warning and an eager fallback when compilation fails."""

import warnings

import lightning as L
import pytest
import torch
from torch import nn

from lit_gan.callbacks import Speed
from lit_gan.metrics import Classifier
from lit_gan.models import DCGAN, WGANGP
from lit_gan.optim import EMA
from tests.conftest import tiny
from tests.models.test_base import batches


def fit(tmp_path, callbacks=(), cls=DCGAN, **model_kwargs):
    torch.manual_seed(0)
    model = tiny(cls, **model_kwargs)
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=1, limit_train_batches=3, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=list(callbacks))
    trainer.fit(model, batches())
    return trainer, model


def close(a: nn.Module, b: nn.Module, atol: float) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.allclose(sa[k].float(), sb[k].float(), atol=atol) for k in sa)


def conv_weights(model: nn.Module) -> list[torch.Tensor]:
    """4-D weights with more than one input channel (where the two memory formats differ)."""
    return [p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1]


def failing_backend(graph, example_inputs):
    raise RuntimeError("no C++ compiler on this machine")


def test_channels_last_changes_the_memory_format_not_the_training(tmp_path):
    _, plain = fit(tmp_path / "plain", ema=EMA(decay=0.9))
    _, fast = fit(tmp_path / "fast", [Speed(channels_last=True)], ema=EMA(decay=0.9))
    weights = conv_weights(fast.generator) + conv_weights(fast.discriminator) + conv_weights(fast.generator_ema)
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in weights)
    assert all(w.is_contiguous() for w in conv_weights(plain))
    assert close(plain, fast, atol=1e-4)
    assert fast.batches_seen == 3


def test_channels_last_hands_d_its_images_in_channels_last(tmp_path):
    torch.manual_seed(0)
    model = tiny(DCGAN, image_shape=(3, 28, 28))  # with one channel both formats are the same
    rgb = torch.utils.data.TensorDataset(torch.rand(8, 3, 28, 28) * 2 - 1, torch.zeros(8, dtype=torch.long))
    seen = []
    model.discriminator.register_forward_hook(lambda m, args, out: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=1, limit_train_batches=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[Speed(channels_last=True)])
    trainer.fit(model, torch.utils.data.DataLoader(rgb, batch_size=8))
    assert seen == [True, True, True]  # D on real, fake (D step) and fake (G step)
    seen.clear()
    model.discriminator(torch.zeros(2, 3, 28, 28), None)  # the hook is gone after fit
    assert seen == [False]


@pytest.mark.integration  # end-to-end: real fits through TorchDynamo
def test_compile_keeps_checkpoint_keys_and_training(tmp_path):
    _, plain = fit(tmp_path / "plain")
    callback = Speed(compile=True, compile_options={"backend": "aot_eager"})  # dynamo + AOTAutograd, no C++ build
    trainer, fast = fit(tmp_path / "fast", [callback])
    assert callback.compiled and fast.generator._compiled_call_impl is not None
    trainer.save_checkpoint(tmp_path / "fast.ckpt")
    saved = torch.load(tmp_path / "fast.ckpt", weights_only=True)["state_dict"]
    assert list(saved) == list(plain.state_dict())
    assert close(plain, fast, atol=1e-5)  # the trial step on the first batch left nothing behind (BN statistics, grads)


def test_compile_falls_back_with_one_warning_when_compilation_fails(tmp_path):
    _, plain = fit(tmp_path / "plain")
    callback = Speed(compile=True, compile_options={"backend": failing_backend})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, fast = fit(tmp_path / "fast", [callback])
    failures = [w for w in caught if "torch.compile failed" in str(w.message)]
    assert len(failures) == 1 and "no C++ compiler" in str(failures[0].message)
    assert not callback.compiled and fast.generator._compiled_call_impl is None and fast.discriminator._compiled_call_impl is None
    assert fast.batches_seen == 3 and close(plain, fast, atol=1e-6)


@pytest.mark.integration  # end-to-end: real fits through TorchDynamo
def test_compile_falls_back_when_a_term_needs_what_compiled_code_cannot_do(tmp_path):
    """WGAN-GP's penalty differentiates D's gradients again (double backward): AOTAutograd refuses."""
    callback = Speed(compile=True, compile_options={"backend": "aot_eager"})
    with pytest.warns(UserWarning, match="torch.compile failed"):
        _, model = fit(tmp_path, [callback], cls=WGANGP)
    assert not callback.compiled and model.batches_seen == 3


def test_speed_refuses_a_model_without_generator_and_discriminator(tmp_path):
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False)
    with pytest.raises(ValueError, match="Speed works on GANs.*Classifier"):
        Speed(channels_last=True).setup(trainer, Classifier(), "fit")


def test_unknown_compile_options_are_refused_before_training():
    with pytest.raises(ValueError, match=r"unknown compile_options \['mod'\]; torch.compile takes .*mode"):
        Speed(compile=True, compile_options={"mod": "max-autotune"})
