"""Settings that cannot work stop at construction with a message saying what to change."""

import pytest

from lit_gan.models import ACGAN, DCGAN, GAN, WGAN, WGANGP
from lit_gan.optim import Optim
from tests.conftest import tiny


@pytest.mark.parametrize(
    "cls,kwargs,message",
    [
        (GAN, {"d_steps": 0}, "d_steps must be a positive integer"),
        (GAN, {"noise": "cauchy"}, "noise must be"),
        (DCGAN, {"ema_decay": 1.0}, "ema_decay"),
        (DCGAN, {"ema_rampup": -0.1}, "ema_rampup must be >= 0"),
        (GAN, {"conditional": True, "num_classes": 0}, "needs labelled data"),
        (ACGAN, {"num_classes": 0}, "needs labelled data"),
        (GAN, {"loss": "bogus"}, "unknown loss 'bogus'; choose one of"),
        (DCGAN, {"terms": {"r3": {}}}, "unknown term 'r3'; choose from"),
        (DCGAN, {"terms": {"gradient_penalty": {"wieght": 1}}}, "term 'gradient_penalty' takes weight"),
        (DCGAN, {"augment": "rotate"}, "unknown augmentation"),
        (DCGAN, {"d": {"dropout": -0.1}}, "dropout is a probability"),
        (DCGAN, {"g": {"width": 0}}, "width must be a positive integer"),
        (DCGAN, {"d": {"maxout": 2}}, "unexpected keyword argument 'maxout'"),
        (GAN, {"g": {"maxout": 1}}, "at least 2"),
        (GAN, {"d": {"norm": "batch"}}, "no batch norm"),
        # terms' own checks
        (WGANGP, {"terms": {"gradient_penalty": {}, "weight_clipping": {}}}, "weight clipping and a gradient penalty"),
        (DCGAN, {"terms": {"gradient_penalty": {}}}, "batch norm in the critic"),
        (WGAN, {"d": {"norm": "spectral"}}, "spectral normalisation already bounds"),
        (WGANGP, {"terms": {"label_noise": {"flip": 0.1}}}, "has no targets"),
        (GAN, {"loss": "hinge", "terms": {"label_noise": {"smoothing": 0.1}}}, "has no targets"),
        (DCGAN, {"terms": {"label_noise": {"flip": 1.5}}}, "flip is a probability"),
        (DCGAN, {"terms": {"aux_classifier": {}}}, "needs conditional=True"),
        (DCGAN, {"terms": {"unrolled": {"steps": 0}}}, "positive integer"),
    ],
)
def test_forbidden_settings_stop_with_a_message(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(cls, **{"num_classes": 10, **kwargs})


@pytest.mark.parametrize("kwargs", [{"lr": -1e-3}, {"lr": 0.0}, {"betas": (0.5, 1.2)}, {"name": "adagrad"}])
def test_bad_optimizer_settings_are_explained(kwargs):
    with pytest.raises(ValueError, match="learning rate|betas|optimizer name"):
        Optim(**kwargs)
