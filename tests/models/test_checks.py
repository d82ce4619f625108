"""Settings that cannot work stop at construction with a message saying what to change."""

import pytest

from lit_gan.models import ACGAN, DCGAN, GAN, WGAN, WGANGP
from lit_gan.optim import Optim
from tests.conftest import tiny


@pytest.mark.parametrize(
    "cls,kwargs,message",
    [
        (GAN, {"opt_d": {"steps": 0}}, "steps must be an integer >= 1"),
        (GAN, {"opt_g": {"steps": 1.5}}, "steps must be an integer >= 1"),
        (GAN, {"latent": {"noise": "cauchy"}}, "noise must be"),
        (GAN, {"latent": {"dim": 0}}, "latent dim must be an integer >= 1"),
        (GAN, {"latent": {"size": 8}}, "latent takes dim, noise, sample_seed"),
        (DCGAN, {"ema": {"decay": 1.0}}, "ema decay must lie in"),
        (DCGAN, {"ema": {"rampup": -0.1}}, "ema rampup must be >= 0"),
        (GAN, {"conditional": True, "num_classes": 0}, "needs labelled data"),
        (ACGAN, {"num_classes": 0}, "needs labelled data"),
        (GAN, {"objective": {"loss": "bogus"}}, "unknown loss 'bogus'; choose from"),
        (GAN, {"objective": {"loss": {"hinge": {"margin": 0}}}}, "hinge margin must be > 0"),
        (GAN, {"objective": {"loss": {"hinge": {"margn": 1}}}}, "loss 'hinge' takes margin"),
        (GAN, {"objective": {"los": "hinge"}}, "objective takes loss, terms and augment"),
        (DCGAN, {"objective": {"terms": {"r3": {}}}}, "unknown term 'r3'; choose from"),
        (DCGAN, {"objective": {"terms": {"gradient_penalty": {"wieght": 1}}}}, "term 'gradient_penalty' takes weight"),
        (DCGAN, {"objective": {"terms": {"label_noise": {"every": 0}}}}, "label_noise every must be an integer >= 1"),
        (DCGAN, {"objective": {"augment": "rotate"}}, "unknown augmentation"),
        (DCGAN, {"d": {"dropout": -0.1}}, "dropout is a probability"),
        (DCGAN, {"g": {"width": 0}}, "width must be a positive integer"),
        (DCGAN, {"d": {"maxout": 2}}, "unexpected keyword argument 'maxout'"),
        (GAN, {"g": {"maxout": 1}}, "at least 2"),
        (GAN, {"d": {"norm": "batch"}}, "no batch norm"),
        # terms' own checks (`objective=` replaces a variant's whole objective: its loss is given again)
        (WGANGP, {"objective": {"loss": "wasserstein", "terms": {"gradient_penalty": {}, "weight_clipping": {}}}},
         "weight clipping and a gradient penalty"),
        (DCGAN, {"objective": {"terms": {"gradient_penalty": {}}}}, "batch norm in the critic"),
        (WGAN, {"d": {"norm": "spectral"}}, "spectral normalisation already bounds"),
        (WGANGP, {"objective": {"loss": "wasserstein", "terms": {"label_noise": {"flip": 0.1}}}}, "has no targets"),
        (GAN, {"objective": {"loss": "hinge", "terms": {"label_noise": {"smoothing": 0.1}}}}, "has no targets"),
        (DCGAN, {"objective": {"terms": {"label_noise": {"flip": 1.5}}}}, "flip is a probability"),
        (DCGAN, {"objective": {"terms": {"aux_classifier": {}}}}, "needs conditional=True"),
        (DCGAN, {"objective": {"terms": {"unrolled": {"steps": 0}}}}, "unrolled steps must be an integer >= 1"),
        (DCGAN, {"objective": {"terms": {"ada": {}}}}, "ada adapts how often the augment policy applies"),
    ],
)
def test_forbidden_settings_stop_with_a_message(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(cls, **{"num_classes": 10, **kwargs})


@pytest.mark.parametrize("kwargs", [{"lr": -1e-3}, {"lr": 0.0}, {"betas": (0.5, 1.2)}, {"name": "adagrad"}])
def test_bad_optimizer_settings_are_explained(kwargs):
    with pytest.raises(ValueError, match="learning rate|betas|optimizer name"):
        Optim(**kwargs)
