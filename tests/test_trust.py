"""A checkpoint never runs code: every field that names a class is checked as text, before any
import or parse, on every path that reads a checkpoint (`lit_gan.trust`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from lit_gan.cli import main
from lit_gan.models import DCGAN, GAN
from lit_gan.nets import DCGANGenerator
from lit_gan.trust import UntrustedCheckpoint, check_hparams, named_classes
from tests.conftest import tiny

pytestmark = pytest.mark.usefixtures("cli_env")

SIDE_EFFECT_MODULE = "lit_gan_test_planted_module"


class WiderGenerator(DCGANGenerator):
    """A user's own network, outside lit_gan."""


def _plants(marker: Path) -> dict[str, Callable[[dict[str, Any]], None]]:
    """Ways to plant code in a checkpoint's hyperparameters, each meant to create `marker`."""

    def shell(hp: dict[str, Any]) -> None:
        hp["generator"] = {"class_path": "os.system", "init_args": {"command": f"touch {marker}"}}

    def popen(hp: dict[str, Any]) -> None:
        hp["discriminator"] = {"class_path": "subprocess.Popen", "init_args": {"args": ["touch", str(marker)]}}

    def import_side_effect(hp: dict[str, Any]) -> None:
        hp["_class_path"] = f"{SIDE_EFFECT_MODULE}.Model"

    def nested(hp: dict[str, Any]) -> None:
        hp["generator"]["init_args"]["width"] = {"class_path": "os.system", "init_args": {"command": f"touch {marker}"}}

    def in_terms(hp: dict[str, Any]) -> None:
        hp["terms"] = {"r1": {"gamma": {"class_path": f"{SIDE_EFFECT_MODULE}.Gamma"}}}

    def plain_string(hp: dict[str, Any]) -> None:  # a Callable-typed field given a bare import path
        hp["generator"] = f"{SIDE_EFFECT_MODULE}.make"

    def as_key(hp: dict[str, Any]) -> None:
        hp["terms"] = {f"{SIDE_EFFECT_MODULE}.Term": {}}

    return {f.__name__: f for f in (shell, popen, import_side_effect, nested, in_terms, plain_string, as_key)}


PLANTS = list(_plants(Path("x")))


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], tuple[Path, Path]]:
    """A tiny DCGAN checkpoint with one plant; returns (checkpoint, marker). A module whose import
    creates the marker lies on sys.path."""
    marker = tmp_path / "ran"
    (tmp_path / f"{SIDE_EFFECT_MODULE}.py").write_text(f"open({str(marker)!r}, 'w').close()\nModel = Gamma = make = Term = object\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = tiny(DCGAN, num_classes=10)

    def make(plant: str) -> tuple[Path, Path]:
        hp = {**dict(model.hparams), "_class_path": "lit_gan.models.DCGAN", "_instantiator": "lightning.pytorch.cli.instantiate_module"}
        hp["generator"] = {**hp["generator"], "init_args": dict(hp["generator"]["init_args"])}
        _plants(marker)[plant](hp)
        path = tmp_path / f"{plant}.ckpt"
        torch.save({"state_dict": model.state_dict(), "hyper_parameters": hp, "epoch": 0, "global_step": 0}, path)
        return path, marker

    yield make
    sys.modules.pop(SIDE_EFFECT_MODULE, None)


def assert_nothing_ran(marker: Path) -> None:
    assert not marker.exists(), "the planted code ran"
    assert SIDE_EFFECT_MODULE not in sys.modules, "the planted module was imported"


@pytest.mark.parametrize("plant", PLANTS)
def test_loading_a_planted_checkpoint_runs_nothing_and_names_the_value(planted, plant: str):
    path, marker = planted(plant)
    with pytest.raises(UntrustedCheckpoint) as info:
        GAN.load_from_checkpoint(path)  # what `lit-gan generate` and the benchmarks call
    message = str(info.value)
    assert len(message.splitlines()) == 1 and str(path) in message and "nothing was imported or run" in message
    assert ("os.system" in message or "subprocess.Popen" in message or SIDE_EFFECT_MODULE in message), message
    with pytest.raises(UntrustedCheckpoint):  # --weights_from (load_weights) reads the same file
        tiny(DCGAN, num_classes=10).load_weights(str(path))
    assert_nothing_ran(marker)


@pytest.mark.parametrize(("command", "plant"), [("fit", "shell"), ("validate", "shell"), ("test", "import_side_effect"),
                                                ("predict", "nested"), ("validate", "popen"), ("fit", "plain_string")])
def test_every_cli_command_refuses_a_planted_checkpoint_in_one_line(planted, command: str, plant: str, capsys, tmp_path: Path):
    path, marker = planted(plant)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--model", "DCGAN", "--data", "EmbeddedMNIST", f"--ckpt_path={path}", f"--runs_dir={tmp_path / 'runs'}"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("lit-gan: error: ") and len(err.splitlines()) == 1, err
    assert "is not one of lit_gan's models or networks" in err
    assert_nothing_ran(marker)


def test_generate_refuses_a_planted_checkpoint(planted, capsys, tmp_path: Path):
    path, marker = planted("import_side_effect")
    with pytest.raises(SystemExit):
        main(["generate", "samples", "--checkpoint", str(path), "--out", str(tmp_path / "out"), "--num", "2"])
    assert SIDE_EFFECT_MODULE in capsys.readouterr().err
    assert_nothing_ran(marker)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_users_own_network_loads_only_when_named(tmp_path: Path):
    path_of = f"{WiderGenerator.__module__}.{WiderGenerator.__qualname__}"
    model = tiny(DCGAN, num_classes=10)
    model.hparams.generator = {"class_path": path_of, "init_args": model.hparams.generator["init_args"]}
    path = tmp_path / "own.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": {**model.hparams, "_class_path": "lit_gan.models.DCGAN"}}, path)
    with pytest.raises(UntrustedCheckpoint, match="WiderGenerator"):
        DCGAN.load_from_checkpoint(path)
    loaded = DCGAN.load_from_checkpoint(path, allowed=[path_of])
    assert type(loaded.generator) is WiderGenerator
    assert all(torch.equal(a, b) for a, b in zip(loaded.generator.state_dict().values(), model.generator.state_dict().values()))
    main(["generate", "samples", "--checkpoint", str(path), "--allow", f"[{path_of}]", "--out", str(tmp_path / "out"), "--num", "2"])
    assert (tmp_path / "out" / "000001.png").is_file()


def test_the_check_reads_strings_only_and_knows_lit_gans_own_paths():
    ok = {"generator": {"class_path": "lit_gan.nets.DCGANGenerator", "init_args": {"final_activation": "tanh"}},
          "discriminator": {"class_path": "lit_gan.nets.dcgan.DCGANDiscriminator"},
          "objective": {"loss": "wasserstein", "terms": {"gradient_penalty": {"weight": 10.0}}, "augment": "translation,cutout"},
          "_class_path": "lit_gan.models.WGANGP", "latent": {"dim": 16, "noise": "normal", "sample_seed": 0}}
    check_hparams(ok, "x.ckpt")  # public and defining import paths of lit_gan's classes pass
    with pytest.raises(UntrustedCheckpoint, match=r"'builtins.eval' \(in hyper_parameters.opt_g.name\)"):
        check_hparams({**ok, "opt_g": {"name": "builtins.eval"}}, "x.ckpt")
    with pytest.raises(UntrustedCheckpoint, match=r"objective.terms\[1\]"):
        check_hparams({**ok, "objective": {"terms": ["a", "shutil.rmtree"]}}, "x.ckpt")
    assert named_classes({"model": {"class_path": "my.Model", "init_args": {"g": {"class_path": "my.G"}}}}) == {"my.Model", "my.G"}
