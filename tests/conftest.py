"""Shared test settings: tiny networks and few batches so the suite stays fast on 2 CPU cores."""

import inspect
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ["LIT_GAN_CACHE"] = tempfile.mkdtemp(prefix="lit_gan_cache_")  # classifiers, real statistics
torch.set_num_threads(1)  # tiny networks: one thread is faster than two

LATENT = 16
"""The latent size of every test model (`tiny` and `tests.fixtures.TINY_CLI`)."""


def variant_defaults(cls: type) -> dict[str, Any]:
    """A variant's constructor defaults, its own first (as jsonargparse resolves them)."""
    out: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            for name, p in inspect.signature(klass.__init__).parameters.items():
                if p.default is not p.empty:
                    out.setdefault(name, p.default)
    return out


def tiny(cls: type, g: dict[str, Any] | None = None, d: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """`cls` with its own networks at width 8 (plus options `g` for G, `d` for D) and a 16-d latent
    (`latent={"noise": "uniform"}` changes the rest of it)."""
    from lit_gan.models.base import Latent
    from lit_gan.nets import as_spec

    defaults = variant_defaults(cls)
    nets = {}
    for role, options in (("generator", g), ("discriminator", d)):
        spec = as_spec(defaults[role])
        nets[role] = {**spec, "init_args": {**spec["init_args"], "width": 8, **(options or {})}}
    latent = kwargs.pop("latent", None)  # a test's own latent settings: a Latent as it is, a mapping over the 16-d one
    latent = Latent(dim=LATENT) if latent is None else latent if isinstance(latent, Latent) else {"dim": LATENT, **latent}
    return cls(**{**nets, **kwargs, "latent": latent})


def steps(cls: type, d: int | None = None, g: int | None = None) -> dict[str, Any]:
    """`opt_d` / `opt_g` of variant `cls` with `d` / `g` steps per round, its optimizer settings
    kept (a Python `opt_d=` replaces the variant's whole): `tiny(WGANGP, **steps(WGANGP, d=1))`."""
    import dataclasses

    from lit_gan.optim import Optim

    defaults = variant_defaults(cls)
    out = {}
    for name, count in (("opt_d", d), ("opt_g", g)):
        if count is not None:
            out[name] = dataclasses.replace(Optim.parse(defaults[name]), steps=count)
    return out


@pytest.fixture
def trainer_kwargs(tmp_path):
    return dict(
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        limit_train_batches=4,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


# Datasets in the real on-disk formats, built once per session, and `cli_env` for in-process CLI
# runs (tests/fixtures.py).
from tests.fixtures import (  # noqa: E402, F401
    celeba_data_dir,
    cifar10_data_dir,
    cli_env,
    fashion_mnist_data_dir,
    flat_image_folder,
    labeled_image_folder,
    mnist_data_dir,
    mnist_digits,
)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`-m "not integration"` does not even import tests/integration/ (its imports cost seconds per process)."""
    if config.getoption("markexpr") == "not integration" and collection_path.name == "integration" and collection_path.parent.name == "tests":
        return True
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration/ (end-to-end runs: CLI, configs, sweeps, DDP, resume,
    W&B, Docker, studies) is marked `integration`; `pytest -m "not integration"` skips them.
    The suite runs in one process per core (pytest-xdist, `--dist loadgroup`): the tests of a
    module with a module-scoped fixture stay in one process, so the fixture is built once."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("xdist_group") is None and _uses_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.path.as_posix()))


def _uses_module_fixture(item: pytest.Item) -> bool:
    manager = item.session._fixturemanager
    return any(d.scope == "module" for name in getattr(item, "fixturenames", ()) for d in manager.getfixturedefs(name, item) or ())
