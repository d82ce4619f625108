"""bench/studies stays rerunnable: every study run's configs (and the sweep's overrides) parse with
the CLI into what the run claims, and study 002's image folder is written in ImageFolder's layout."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lit_gan.cli import GANCLI, main
from lit_gan.data import ImageFolder
from lit_gan.data.mnist import load_mnist_5k
from tests.fixtures import write_mnist_raw

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("studies", REPO / "bench" / "studies" / "run.py")
studies = sys.modules["studies"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(studies)
RUNS = sorted({run for study in studies.STUDIES.values() for run in study.runs}, key=lambda r: (r.config, r.args))

pytestmark = pytest.mark.usefixtures("cli_env")


def test_every_study_config_is_used_and_every_study_has_runs():
    used = {run.config for run in RUNS} | {run.base for run in RUNS if run.base != "base.yaml"}
    files = {str(p.relative_to(studies.CONFIGS)) for p in studies.CONFIGS.glob("*/*.yaml")}
    assert files == used, f"configs without a run: {files - used}; runs without a config: {used - files}"
    assert set(studies.STUDIES) == {"000", "001", "002", "003", "004", "stacked", "sweep"}
    for study in studies.STUDIES.values():  # one run directory each
        assert len({run.slug for run in study.runs}) == len(study.runs)


def contains(got, value) -> bool:
    """`got` holds what the config says: equal, or for mappings every key it sets, recursively."""
    if isinstance(value, dict):
        return isinstance(got, dict) and all(k in got and contains(got[k], v) for k, v in value.items())
    return got == value or (isinstance(got, (list, tuple)) and list(got) == value)


def print_config(run) -> list[str]:
    return ["fit", "--config", str(studies.CONFIGS / run.base), "--config", str(studies.CONFIGS / run.config), *run.args,
            "--print_config"]


@pytest.fixture(scope="module")
def cli_parser():
    """The parser `main` builds (building it is two thirds of a `--print_config` run), caught from one
    `main` call and reused for every run; `test_the_reused_parser_prints_what_main_prints` holds it to that."""
    caught = []
    original = GANCLI.parse_arguments

    def catch(self, parser, args):
        caught.append(parser)
        return original(self, parser, args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GANCLI, "parse_arguments", catch)
        patch.setattr("sys.argv", ["lit-gan"])
        with pytest.raises(SystemExit), contextlib.redirect_stdout(io.StringIO()):
            main(print_config(RUNS[0]))
    return caught[0]


@pytest.mark.parametrize("run", [RUNS[0], RUNS[-1]], ids=lambda r: r.slug)
def test_the_reused_parser_prints_what_main_prints(run, capsys, cli_parser):
    printed = []
    for parse in (main, cli_parser.parse_args):
        with pytest.raises(SystemExit) as exit:
            parse(print_config(run))
        printed.append((exit.value.code, capsys.readouterr().out))
    assert printed[0] == printed[1] and printed[0][0] in (0, None) and "seed_everything" in printed[0][1]


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r.slug)
def test_study_run_parses_into_its_settings(run, capsys, cli_parser):
    with pytest.raises(SystemExit) as exit:
        cli_parser.parse_args(print_config(run))  # as `main` parses it (the parser `main` built)
    assert exit.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    expected = yaml.safe_load((studies.CONFIGS / run.config).read_text())
    base = yaml.safe_load((studies.CONFIGS / run.base).read_text())
    epochs = expected.get("trainer", {}).get("max_epochs", base["trainer"]["max_epochs"])
    assert config["seed_everything"] == 0 and config["trainer"]["max_epochs"] == epochs
    every = expected.get("evaluation", {}).get("every_n_epochs", base["evaluation"]["every_n_epochs"])
    assert config["evaluation"]["every_n_epochs"] == every
    if "callbacks" in base["trainer"]:  # the stacked study's CPU budget
        given = [(c["class_path"], c["init_args"]) for c in base["trainer"]["callbacks"]]
        resolved = [(c["class_path"], {k: c["init_args"][k] for k in args}) for c, (_, args) in zip(config["trainer"]["callbacks"], given)]
        assert resolved == given and len(config["trainer"]["callbacks"]) == len(given)  # the base's budget, unchanged
    for section in ("model", "data"):
        for key, value in expected.get(section, {}).get("init_args", {}).items():
            if any(arg.split("=")[0].startswith(f"--{section}.init_args.{key}") for arg in run.args):
                continue  # the grid point's value, checked below
            assert contains(config[section]["init_args"][key], value), key
    for arg in run.args:  # e.g. --model.init_args.opt_g.lr=5e-4
        key, value = arg.removeprefix("--").split("=", 1)
        node = config
        for part in key.split("."):
            node = node[part]
        expected_value = yaml.safe_load(value) if value.startswith("[") else float(value)  # YAML reads 5e-4 as text
        assert node == pytest.approx(expected_value), arg


def test_stacked_report_carries_the_literature_with_its_sources():
    """The literature's figures live in run.py, so a rerun keeps them; stacked.md holds what it writes,
    and every figure names its paper and either where it was read or that it was not."""
    report = (studies.RESULTS / "stacked.md").read_text()
    assert "\n".join(studies.literature_lines()) in report
    for figure in studies.LITERATURE:
        assert " et al. " in figure.paper and (figure.checked.startswith(studies.FROM_MEMORY) or "](https://" in figure.checked)


def test_a_tagged_report_names_the_command_that_reruns_it_with_its_overrides():
    assert (studies.rerun_command("stacked-10min", ["--config=goal.yaml"], jobs=2)
            == "python bench/studies/run.py stacked --jobs 2 --tag 10min -- --config=goal.yaml")
    assert studies.rerun_command("stacked", []) == "python bench/studies/run.py stacked"


def test_fashion_folder_export_has_one_folder_per_class(tmp_path):
    images, labels = load_mnist_5k()  # real digits standing in for Fashion-MNIST: the format matters
    pick = torch.stack([(labels == c).nonzero().flatten()[:5] for c in range(10)]).T.flatten()  # 0..9, 0..9, ...
    write_mnist_raw(tmp_path / "FashionMNIST" / "raw", (images[pick, 0].numpy(), labels[pick].numpy()), n_train=40)
    folder = tmp_path / "fashion"
    studies.export_fashion_folder(folder, tmp_path, per_class=3)
    classes = sorted(p.name for p in folder.iterdir())
    assert len(classes) == 10 and "T-shirt-top" in classes  # "T-shirt/top" cannot be a folder name
    counts = [len(list((folder / c).glob("*.png"))) for c in classes]
    assert sum(counts) == 30 and set(counts) == {3}
    data = ImageFolder(root=str(folder), image_size=28, channels=1, val_fraction=0.2)
    data.setup("fit")
    assert len(data.train_set) + len(data.val_set) == 30
    assert data.num_classes == 10 and data.image_shape == (1, 28, 28)
    studies.export_fashion_folder(folder, tmp_path, per_class=5)  # an existing folder is kept as it is
    assert sum(len(list((folder / c).glob("*.png"))) for c in classes) == 30


def test_a_run_counts_as_finished_only_after_all_its_epochs(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "epoch_001.json").write_text("{}")
    (tmp_path / "config.yaml").write_text("trainer:\n  max_epochs: 3\n")
    rows = ["epoch,step,train/d_loss,train/epoch_seconds", "0,9,0.5,", "0,10,,4.2", "1,20,,4.1"]
    (tmp_path / "metrics.csv").write_text("\n".join(rows))
    assert not studies.finished(tmp_path)  # interrupted after 2 of 3 epochs: rerun, not reported
    (tmp_path / "metrics.csv").write_text("\n".join([*rows, "2,30,,4.3"]))
    assert studies.finished(tmp_path)
    assert not studies.finished(tmp_path / "missing")
