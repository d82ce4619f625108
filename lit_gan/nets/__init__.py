"""Generator and discriminator networks. A new architecture is one file here.

Every generator is built as `G(image_shape, latent_dim, num_classes, **options)` and maps
`(z, labels | None)` to images, exposing `value_range`; every discriminator is built as
`D(image_shape, num_classes, outputs, **options)` and maps `(images, labels | None)` to logits
(N,) or (N, outputs). The model fills in the first three arguments (the data's shape and
classes are linked in by the CLI); configs set the options:

    generator: {class_path: lit_gan.nets.DCGANGenerator, init_args: {width: 32}}

In Python, pass a class, or `net(cls, **options)`.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable

from torch import nn

from lit_gan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from lit_gan.nets.mlp import MLPDiscriminator, MLPGenerator
from lit_gan.nets.r3gan import R3GANDiscriminator, R3GANGenerator
from lit_gan.trust import trust_classes

NetSpec = dict[str, Any]
"""A network as plain data: {"class_path": "module.Class", "init_args": {...options}}."""

GeneratorFactory = Callable[[tuple[int, int, int], int, int], nn.Module]
"""(image_shape, latent_dim, num_classes) -> generator; a class, a jsonargparse callable or a NetSpec."""

DiscriminatorFactory = Callable[[tuple[int, int, int], int, int], nn.Module]
"""(image_shape, num_classes, outputs) -> discriminator; a class, a jsonargparse callable or a NetSpec."""


def net(cls: type[nn.Module], **options: Any) -> Any:
    """The NetSpec of `cls` with `options`: a default that jsonargparse shows and overrides."""
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": options}


def as_spec(factory: Any) -> NetSpec:
    """A NetSpec (plain data, safe in checkpoints) from a class, a NetSpec, or the partial that
    jsonargparse makes of `class_path` + `init_args`."""
    if isinstance(factory, dict):
        if "class_path" not in factory:
            raise ValueError(f"a network needs a class_path, e.g. lit_gan.nets.DCGANGenerator; got {factory}")
        return {"class_path": factory["class_path"], "init_args": dict(factory.get("init_args") or {})}
    if isinstance(factory, functools.partial):
        cls = next((a for a in (factory.func, *factory.args) if isinstance(a, type)), None)
        if cls is not None:
            return net(cls, **factory.keywords)
    if isinstance(factory, type):
        return net(factory)
    raise ValueError(f"a network must be a class or {{class_path, init_args}}, got {factory!r}")


def build(spec: NetSpec, *args: Any) -> nn.Module:
    """Instantiate a NetSpec with the model-supplied positional `args`. Only torch modules are
    built, so a checkpoint's hyperparameters cannot call arbitrary code."""
    module_name, _, name = spec["class_path"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"network class {spec['class_path']!r} not found; e.g. lit_gan.nets.DCGANGenerator") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"{spec['class_path']} is not a torch.nn.Module")
    try:
        return cls(*args, **spec["init_args"])
    except TypeError as error:
        raise ValueError(f"{cls.__name__}: {str(error).splitlines()[0]}; lit_gan builds a generator as "
                         "G(image_shape, latent_dim, num_classes, **options) and a discriminator as "
                         "D(image_shape, num_classes, outputs, **options)") from None


__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DiscriminatorFactory",
    "GeneratorFactory",
    "MLPDiscriminator",
    "MLPGenerator",
    "NetSpec",
    "R3GANDiscriminator",
    "R3GANGenerator",
    "as_spec",
    "build",
    "net",
]

trust_classes(__name__, [DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, R3GANDiscriminator, R3GANGenerator])
