"""The `lit-gan` command: one clear line for bad input, run directories, short class names,
`python -m lit_gan`, and the README's test command."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import lit_gan.data
import lit_gan.models
from tests.fixtures import TINY_CLI as TINY
from tests.fixtures import TINY_MODEL
from lit_gan.cli import TrainingError, main
from lit_gan.folders import new_run_dir
from lit_gan.data import EmbeddedMNIST, ImageDataModule
from lit_gan.models import DCGAN, GAN
from lit_gan.nets import DCGANGenerator

pytestmark = pytest.mark.usefixtures("cli_env")

REPO = Path(__file__).resolve().parents[2]
SMALL_MNIST = ["--data.init_args.batch_size=16", "--data.init_args.val_size=16"]
MODELS = [n for n in lit_gan.models.__all__ if isinstance(getattr(lit_gan.models, n), type) and issubclass(getattr(lit_gan.models, n), GAN)]
DATASETS = ["CIFAR10", "CelebA", "EmbeddedMNIST", "FashionMNIST", "ImageFolder", "MNIST"]

# name -> (arguments after `fit`, text the message must contain); "{flat}", "{celeba}", "{empty}"
# are filled in with an unlabeled image folder, a CelebA data_dir and an empty folder.
BAD_INPUT = {
    "unknown model": (["--model", "DCGANN", "--data", "EmbeddedMNIST"], ["'DCGANN'", "models:", *MODELS]),
    "unknown dataset": (["--model", "DCGAN", "--data", "MNISTT"], ["'MNISTT'", "datasets:", *DATASETS]),
    "image size DCGAN cannot make": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--data.init_args.image_size", "27"],
        ["27x27", "--data.init_args.image_size"],
    ),
    "misspelt settings field": (
        ["--model", "WGANGP", "--data", "EmbeddedMNIST", "--model.init_args.opt_d.stepz=2"],
        ["--opt_d.stepz", "did you mean 'opt_d.steps'?"],
    ),
    "one cluster": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.latent.clusters=1"],
        ["latent clusters", "--model.init_args.latent.clusters"],
    ),
    "clusters on a conditional model": (
        ["--model", "CDCGAN", "--data", "EmbeddedMNIST", "--model.init_args.latent.clusters=4"],
        ["clusters=4", "conditional", "--model DCGAN"],
    ),
    "negative learning rate": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.opt_d.lr=-1"],
        ["learning rate", "lr=-1"],
    ),
    "label flip above 1": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.objective.terms={{label_noise: {{flip: 1.5}}}}"],
        ["label_noise flip", "[0, 1]", "1.5"],
    ),
    "negative dropout in D": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.discriminator.init_args.dropout", "-0.1"],
        ["dropout", "[0, 1]", "-0.1"],
    ),
    "unknown term": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.objective.terms={{r3: {{gamma: 1}}}}"],
        ["unknown term 'r3'", "gradient_penalty", "label_noise"],
    ),
    "batch size not a number": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--data.init_args.batch_size", "thirty-two"],
        ["EmbeddedMNIST", 'Parser key "batch_size"', "Expected a <class 'int'>", "thirty-two"],
    ),
    "a choice not among the choices": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--evaluation.settings.real_split", "foo"],
        ['Parser key "evaluation.settings.real_split"', "'train', 'val', 'test'", "Got value: foo"],
    ),
    "an epoch count not a number": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--trainer.max_epochs", "ten"],
        ['Parser key "trainer.max_epochs"', "Expected a <class 'int'>", "Given value: ten"],
    ),
    "unknown network class": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.generator=lit_gan.nets.ResNetGenerator"],
        ["has no attribute 'ResNetGenerator'", "networks: DCGANDiscriminator, DCGANGenerator"],
    ),
    "a module that is no generator": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.generator=torch.nn.Linear"],
        ["torch.nn.Linear", "Option 'width' is not accepted"],  # the tiny width given to every case
    ),
    "a network option out of range": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.discriminator.init_args.dropout=1.5"],
        ["dropout is a probability and must lie in [0, 1], got 1.5"],
    ),
    "a term that is not a mapping": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.objective.terms=[gradient_penalty]"],
        ['Parser key "objective.terms"', "Expected a <class 'collections.abc.Mapping'>"],
    ),
    "misspelt model key": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.widht", "64"],
        ["'widht' is not accepted", "did you mean 'generator.init_args.width'?"],
    ),
    "misspelt network key": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.discriminator.init_args.drop", "0.2"],
        ["DCGANDiscriminator", "'drop' is not accepted", "did you mean 'dropout'?"],
    ),
    "unknown loss": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.objective.loss=relativistic"],
        ["unknown loss 'relativistic'", "hinge", "nonsaturating"],
    ),
    "conditional model on an unlabeled folder": (
        ["--model", "CDCGAN", "--data", "ImageFolder", "--data.init_args.root={flat}", "--data.init_args.image_size=8"],
        ["CDCGAN", "num_classes=0", "labelled data"],
    ),
    "conditional model on CelebA": (
        ["--model", "CDCGAN", "--data", "CelebA", "--data.init_args.data_dir={celeba}", "--data.init_args.image_size=16"],
        ["CDCGAN", "num_classes=0", "labelled data"],
    ),
    "MNIST missing and download=false": (
        ["--model", "DCGAN", "--data", "MNIST", "--data.init_args.download=false", "--data.init_args.data_dir={empty}"],
        ["MNIST data not found", "{empty}/MNIST/raw", "train-images-idx3-ubyte.gz", "--data.init_args.download true"],
    ),
    "sigmoid generator for data in [-1, 1]": (
        ["--model", "DCGAN", "--data", "EmbeddedMNIST", "--model.init_args.generator.init_args.final_activation=sigmoid", *SMALL_MNIST],
        ["generator produces images in [0.0, 1.0]", "[-1.0, 1.0]", "--data.init_args.value_range [0.0, 1.0]"],
    ),
}


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, f"expected one line, got:\n{err}"
    assert err.startswith("lit-gan: error: "), err
    return err


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_stops_before_training_with_one_line(case, tmp_path, capsys, request):
    paths = {"flat": "", "celeba": "", "empty": str(tmp_path / "empty")}
    args, expected = BAD_INPUT[case]
    if any("{flat}" in a for a in args):
        paths["flat"] = str(request.getfixturevalue("flat_image_folder"))
    if any("{celeba}" in a for a in args):
        paths["celeba"] = str(request.getfixturevalue("celeba_data_dir"))
    (tmp_path / "empty").mkdir()
    runs = tmp_path / "runs"
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["fit", *[a.format(**paths) for a in args], *TINY, f"--runs_dir={runs}"])
    assert info.value.code == 2
    message = one_error_line(capsys)
    missing = [text.format(**paths) for text in expected if text.format(**paths) not in message]
    assert not missing, f"{missing} not in: {message}"
    assert "Namespace(" not in message and "Subtypes:" not in message, message  # no parser dumps
    assert not list(tmp_path.rglob("*.ckpt")), "a checkpoint was written"
    assert not list(tmp_path.rglob("*.png")), "a sample grid was written"


def test_an_unknown_wandb_mode_stops_before_the_run_directory_is_made(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "ofline")
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["fit", "--model", "DCGAN", "--data", "EmbeddedMNIST", *TINY, f"--runs_dir={tmp_path / 'runs'}"])
    assert info.value.code == 2
    assert "WANDB_MODE='ofline' is not a W&B mode" in one_error_line(capsys)
    assert not (tmp_path / "runs").exists()


def test_module_prints_the_config(tmp_path):
    """`python -m lit_gan fit --print_config` works from a clean process and writes nothing."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "lit_gan", "fit", "--print_config", "--model", "DCGAN", "--data", "EmbeddedMNIST"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "class_path: lit_gan.models.DCGAN" in result.stdout and "class_path: lit_gan.nets.DCGANGenerator" in result.stdout
    config = yaml.safe_load(result.stdout)
    assert config["data"]["class_path"] == "lit_gan.data.EmbeddedMNIST"
    assert config["model"]["init_args"]["opt_g"]["lr"] == 2e-4
    assert list(tmp_path.iterdir()) == [], "printing the config created files"


def test_two_default_fits_get_their_own_run_directories(tmp_path):
    args = ["fit", "--model", "DCGAN", "--data", "EmbeddedMNIST", *SMALL_MNIST, *TINY, f"--runs_dir={tmp_path}"]
    first = Path(main(args).trainer.default_root_dir)
    ckpt, config = (first / "checkpoints" / "last.ckpt").read_bytes(), (first / "config.yaml").read_bytes()
    second = Path(main(args).trainer.default_root_dir)
    assert first != second
    assert sorted(p for p in tmp_path.iterdir() if p.is_dir()) == sorted([first, second])
    for run in (first, second):
        assert run.parent == tmp_path and run.name.startswith("embeddedmnist-dcgan-")
        assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "config.yaml").is_file()
    assert (first / "checkpoints" / "last.ckpt").read_bytes() == ckpt  # never overwritten
    assert (first / "config.yaml").read_bytes() == config


def test_short_class_names_resolve(tmp_path):
    cli = main(["--model", "DCGAN", "--data", "EmbeddedMNIST", f"--runs_dir={tmp_path}"], run=False)
    assert type(cli.model) is DCGAN and type(cli.datamodule) is EmbeddedMNIST
    assert cli.config.model.class_path == "lit_gan.models.DCGAN"
    assert cli.config.data.class_path == "lit_gan.data.EmbeddedMNIST"
    assert isinstance(cli.model.generator, DCGANGenerator)
    assert tuple(cli.model.hparams.image_shape) == (1, 28, 28) and cli.model.hparams.num_classes == 10  # linked
    assert isinstance(cli.datamodule, ImageDataModule) and lit_gan.data.EmbeddedMNIST is EmbeddedMNIST


def test_readme_shows_the_ci_test_command():
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    command = commands[-1]
    assert "pytest" in command, command
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md is missing"
    assert command in readme.read_text(), f"README.md does not show the CI test command: {command}"


def test_console_script_exits_zero_after_a_fit(tmp_path):
    """The installed `lit-gan` script: its exit status is 0 (a returned object would make it 1)."""
    script = Path(sys.executable).parent / "lit-gan"
    assert script.is_file(), "install the package (pip install -e .) to get the lit-gan script"
    done = subprocess.run(
        [str(script), "fit", "--model=DCGAN", "--data=EmbeddedMNIST", *TINY_MODEL,
         "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=2",
         "--trainer.enable_progress_bar=false", "--evaluation.every_n_epochs=0", f"--runs_dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "WANDB_MODE": "offline"}, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Checkpoint:" in done.stdout and "GANCLI object" not in done.stderr


def test_a_diverging_run_stops_with_one_line_and_exit_1(tmp_path, capsys):
    """The fault battery's case: Wasserstein loss, no constraint, lr 1e30: G's weights would go NaN
    and (before) a NaN model was saved as the best, with a finite FID and exit 0."""
    args = ["fit", "--model", "GAN", "--data", "EmbeddedMNIST", "--model.init_args.objective.loss", "wasserstein",
            "--model.init_args.opt_g.lr", "1e30", "--model.init_args.opt_d.lr", "1e30", *TINY_MODEL,
            "--trainer.limit_train_batches", "10", "--trainer.max_epochs", "2", "--evaluation.every_n_epochs", "1",
            "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar=false", f"--runs_dir={tmp_path}"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lit-gan: error: training diverged at batch") and "lower the learning rates" in err[-1]
    for ckpt in tmp_path.rglob("*.ckpt"):  # whatever was saved is finite
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), ckpt


def _claim(root: str, barrier, out) -> None:
    barrier.wait()  # every process asks in the same instant
    out.put(str(new_run_dir(root, "embeddedmnist-dcgan")))


def test_runs_started_at_the_same_instant_get_their_own_directories(tmp_path):
    ctx = multiprocessing.get_context("fork")
    n = 6
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(str(tmp_path), barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=60) for _ in range(n)]
    for p in procs:
        p.join(timeout=60)
    assert len(set(claimed)) == n and all(Path(c).is_dir() for c in claimed)  # six runs, six directories


def test_a_read_only_run_directory_stops_before_training(tmp_path, capsys, monkeypatch):
    """Found before any training, not at the first save an epoch later. (Root ignores permission
    bits, so the filesystem's refusal is simulated at the write.)"""
    real_write = Path.write_bytes

    def read_only(self, data):
        if self.name.startswith(".write-test-"):
            raise PermissionError(13, "Permission denied")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", "DCGAN", "--data", "EmbeddedMNIST", *TINY, f"--runs_dir={tmp_path}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lit-gan: error: cannot write to ") and "(Permission denied)" in err and len(err.splitlines()) == 1, err
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("*.png"))


class RaisesMidTraining(DCGAN):
    """A model with a bug that shows at its second batch."""

    def training_step(self, batch, batch_idx):
        if self.batches_seen == 1:
            raise ValueError("a bug in the second step")
        return super().training_step(batch, batch_idx)


def test_an_error_during_training_keeps_its_traceback(tmp_path):
    with pytest.raises(TrainingError, match="training stopped at batch 1") as error:
        main(["fit", "--model", f"{__name__}.RaisesMidTraining", "--data", "EmbeddedMNIST", *TINY, f"--runs_dir={tmp_path}"])
    assert isinstance(error.value.__cause__, ValueError) and "second step" in str(error.value.__cause__)


def test_the_end_of_fit_summary_shows_every_path_alike_and_the_seed_is_explicit(tmp_path, monkeypatch, capsys):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    args = ["fit", "--model", "DCGAN", "--data", "EmbeddedMNIST", *SMALL_MNIST, *TINY]
    for runs_dir, relative in (("runs", True), (str(elsewhere), False)):
        run = Path(main([*args, f"--runs_dir={runs_dir}"]).trainer.default_root_dir)
        lines = [line for line in capsys.readouterr().out.splitlines() if line.split(":")[0] in SUMMARY]
        paths = [Path(line.split(":", 1)[1].strip()) for line in lines]
        assert [line.split(":")[0] for line in lines] == list(SUMMARY)
        assert all(not p.is_absolute() for p in paths) if relative else all(p.is_absolute() for p in paths)
        assert all(p.exists() for p in paths) and paths[2] == paths[0] / "checkpoints" / "last.ckpt"
        assert yaml.safe_load((run / "config.yaml").read_text())["seed_everything"] == 0  # reproducible by default


SUMMARY = ("Run directory", "Sample grid", "Checkpoint")


def test_quiet_filters_are_installed_once_however_many_commands_run():
    import logging

    from lit_gan.cli import quiet

    for _ in range(3):
        quiet()
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert len(logger.filters) == 1
    tip = logging.LogRecord("x", logging.INFO, "", 0, "💡 Tip: try our cloud", None, None)
    assert not logger.filter(tip) and logger.filter(logging.LogRecord("x", logging.INFO, "", 0, "Epoch 1", None, None))


def test_self_conditioning_trains_on_a_folder_without_labels(flat_image_folder, tmp_path):
    """The user story of `clusters`: images with no classes, a model that finds its own."""
    cli = main(["fit", "--model", "DCGAN", "--data", "ImageFolder", f"--data.init_args.root={flat_image_folder}",
                "--data.init_args.image_size=8", "--data.init_args.batch_size=4", "--model.init_args.latent.clusters=3",
                "--evaluation.every_n_epochs=0",  # no Inception weights here; the evaluation is not what this checks
                *TINY, f"--runs_dir={tmp_path}"])
    run = Path(cli.trainer.default_root_dir)
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    centroids = state["cluster_centroids"]
    assert centroids.shape == (3, 3 * 8 * 8) and len(centroids.unique(dim=0)) == 3
    assert torch.isclose(state["generator.proportions"].sum(), torch.tensor(1.0))
    from PIL import Image
    with Image.open(sorted((run / "samples").glob("*.png"))[-1]) as grid:
        assert grid.size == (3 * (8 + 2) + 2, 8 * (8 + 2) + 2)  # one column per cluster
