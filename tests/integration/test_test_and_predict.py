"""`lit-gan test` scores against the data's test split with other samples than `validate`, and
`lit-gan predict` writes the generated images (and labels) into the run and says where.

One tiny CDCGAN is trained on EmbeddedMNIST for the whole module, with small evaluation settings
and a classifier of a few steps (cached in the session's LIT_GAN_CACHE) in its config.yaml.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_gan.callbacks import Evaluation, PredictionWriter
from lit_gan.callbacks.metrics import TEST_SEED_OFFSET
from lit_gan.cli import main
from lit_gan.data import EmbeddedMNIST
from lit_gan.images import to_uint8
from lit_gan.models import CDCGAN, DCGAN
from tests.conftest import tiny
from tests.fixtures import TINY_CLI, cli_env_in

pytestmark = pytest.mark.usefixtures("cli_env")

PREDICT_SIZE, BATCH = 20, 16
FIT = [
    "--model", "CDCGAN", "--data", "EmbeddedMNIST", f"--data.init_args.batch_size={BATCH}",
    "--data.init_args.val_size=64", f"--data.init_args.predict_size={PREDICT_SIZE}", *TINY_CLI,
    "--evaluation.every_n_epochs=0", "--evaluation.classifier_steps=20", "--evaluation.settings.num_fake=100",
    "--evaluation.settings.num_real=200", "--evaluation.settings.kid_subsets=5", "--evaluation.settings.kid_subset_size=50",
]
METRICS = ("fid", "kid_mean", "is_real_mean", "nn_distance", "nn_distance_real", "d_fake", "d_loss", "g_loss")
DIFFERENT = ("fid", "kid_mean", "is_real_mean", "nn_distance", "nn_distance_real", "d_fake")
"""What differs between test and validate: the reference (real statistics) and the samples (noise);
an untrained G draws nearly the same image for any z, so its losses agree to float precision."""


@dataclass
class Run:
    dir: Path
    ckpt: Path
    config: Path  # a copy of the run's config.yaml as fit wrote it


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Run:
    runs = tmp_path_factory.mktemp("runs")
    with cli_env_in(runs):
        cli = main(["fit", *FIT, f"--runs_dir={runs}"])
    run = Path(cli.trainer.default_root_dir)
    config = runs / "fit-config.yaml"
    config.write_bytes((run / "config.yaml").read_bytes())
    return Run(run, run / "checkpoints" / "last.ckpt", config)


def evaluate(run: Run, subcommand: str) -> tuple[dict[str, float], dict]:
    """`lit-gan <subcommand>` on the run's last checkpoint: its logged numbers (without the prefix)
    and the Evaluation callback's report."""
    cli = main([subcommand, "--config", str(run.config), "--ckpt_path", str(run.ckpt)])
    prefix = {"validate": "val", "test": "test"}[subcommand]
    logged = {k.split("/", 1)[1]: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith(f"{prefix}/")}
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, Evaluation))
    return logged, {"protocol": callback.last.protocol, "settings": callback.settings}


# --------------------------------------------------------------------------- test vs validate
def test_test_scores_against_the_test_split_with_other_samples_than_validate(trained: Run):
    val, val_report = evaluate(trained, "validate")
    test, test_report = evaluate(trained, "test")
    assert set(METRICS) <= set(val) and set(METRICS) <= set(test), (sorted(val), sorted(test))

    # validate keeps its reference (the training images, the configured seed); test takes the test split
    assert val_report["protocol"]["real_split"] == "train" and "test_is_val" not in val_report["protocol"]
    assert val_report["protocol"]["settings"]["seed"] == 0
    assert test_report["protocol"]["real_split"] == "test" and test_report["protocol"]["test_is_val"] is True
    assert test_report["protocol"]["settings"]["seed"] == TEST_SEED_OFFSET  # other noise than validate
    same = [name for name in DIFFERENT if val[name] == test[name]]
    assert not same, f"test repeats validate's {same}: {val} vs {test}"

    # the reports on disk name the split too
    val_file = json.loads((trained.dir / "metrics" / "validate-last.json").read_text())
    test_file = json.loads((trained.dir / "metrics" / "test-last.json").read_text())
    assert (val_file["stage"], val_file["protocol"]["real_split"]) == ("val", "train")
    assert (test_file["stage"], test_file["protocol"]["real_split"], test_file["protocol"]["test_is_val"]) == ("test", "test", True)
    assert test_file["metrics"]["fid"] == pytest.approx(test["fid"]) and val_file["metrics"]["fid"] == pytest.approx(val["fid"])

    # validate again: the same numbers as before (its samples and reference did not move)
    again, _ = evaluate(trained, "validate")
    assert {k: again[k] for k in METRICS} == {k: val[k] for k in METRICS}


# --------------------------------------------------------------------------- predict
def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"))


def read(path: Path) -> torch.Tensor:
    with Image.open(path) as picture:
        array = torch.from_numpy(np.array(picture))
    return array.unsqueeze(0) if array.ndim == 2 else array.permute(2, 0, 1)


def test_predict_writes_the_images_and_labels_into_the_run_and_says_where(trained: Run, capsys, monkeypatch):
    monkeypatch.chdir(trained.dir.parent)  # paths are shown relative to the working directory
    capsys.readouterr()
    cli = main(["predict", "--config", str(trained.config), "--ckpt_path", str(trained.ckpt)])
    said = re.findall(r"^Predictions: (.+)$", capsys.readouterr().out, re.MULTILINE)
    assert len(said) == 1, said
    folder = Path(said[0])
    assert not folder.is_absolute() and folder.parent == Path(trained.dir.name)  # <run>/predict-<time>
    assert folder.name.startswith("predict-") and folder.is_dir()

    # predict_size images, each the one model.predict_step draws for its batch (same seeds)
    files = pngs(folder)
    assert [p.name for p in files] == [f"{i:06d}.png" for i in range(PREDICT_SIZE)]
    labels = EmbeddedMNIST(predict_size=PREDICT_SIZE).predict_labels()
    model = CDCGAN.load_from_checkpoint(trained.ckpt, map_location="cpu").eval()
    with torch.no_grad():
        expected = torch.cat([model.predict_step(batch, i) for i, batch in enumerate(labels.split(BATCH))])
    written = torch.stack([read(p) for p in files])
    assert torch.equal(written, to_uint8(expected, model.value_range))
    assert torch.equal(written, to_uint8(torch.cat(cli.trainer.predict_loop.predictions), model.value_range))

    # the labels each image was asked for, and a grid of them (one column per class)
    with open(folder / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["file"], int(r["label"]), r["class_name"]) for r in rows] == [
        (f"{i:06d}.png", i % 10, str(i % 10)) for i in range(PREDICT_SIZE)]
    with Image.open(folder / "grid.png") as grid:
        assert grid.size == (10 * 30 + 2, 2 * 30 + 2)

    # a second predict writes a folder of its own, with the same images (seeded)
    capsys.readouterr()
    main(["predict", "--config", str(trained.config), "--ckpt_path", str(trained.ckpt)])
    second = Path(re.search(r"^Predictions: (.+)$", capsys.readouterr().out, re.MULTILINE).group(1))
    assert second != folder and [p.read_bytes() for p in pngs(second)] == [p.read_bytes() for p in files]


def test_predict_under_ddp_writes_every_image_once(trained: Run, tmp_path: Path):
    """Two processes share the predict set: every image is written once, by the rank that drew it,
    ranks draw different noise, and rank 0 writes the labels and the grid once all are there."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "lit_gan", "predict", "--config", str(trained.config), "--ckpt_path", str(trained.ckpt),
           "--trainer.strategy=ddp", "--trainer.devices=2", f"--predictions.dirpath={out}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Predictions: ") == 1 and f"Predictions: {out.relative_to(tmp_path)}" in done.stdout
    files = pngs(out)
    assert [p.name for p in files] == [f"{i:06d}.png" for i in range(PREDICT_SIZE)]
    assert sorted(p.name for p in out.iterdir() if not p.name[0].isdigit()) == ["grid.png", "labels.csv"]
    with open(out / "labels.csv", newline="") as f:
        assert [int(r["label"]) for r in csv.DictReader(f)] == [i % 10 for i in range(PREDICT_SIZE)]
    model = CDCGAN.load_from_checkpoint(trained.ckpt, map_location="cpu").eval()
    with torch.no_grad():  # rank r draws the samples r, r + 2, ... with noise sample_seed + batch_idx * 2 + r
        labels = torch.arange(1, PREDICT_SIZE, 2) % 10  # rank 1's one batch
        rank1 = model.generate(labels=labels, z=model.sample_z(len(labels), torch.Generator().manual_seed(0 + 0 * 2 + 1)))
    assert torch.equal(torch.stack([read(p) for p in files[1::2]]), to_uint8(rank1, model.value_range))


def test_an_unconditional_model_gets_images_and_a_grid_but_no_labels(tmp_path: Path, trainer_kwargs: dict):
    import lightning as L

    model = tiny(DCGAN, image_shape=(1, 28, 28))
    writer = PredictionWriter(dirpath=str(tmp_path / "out"), grid=8)
    trainer = L.Trainer(**{**trainer_kwargs, "callbacks": [writer]})
    predicted = trainer.predict(model, datamodule=EmbeddedMNIST(batch_size=4, predict_size=10))
    assert writer.folder == tmp_path / "out"
    assert [p.name for p in pngs(writer.folder)] == [f"{i:06d}.png" for i in range(10)]
    assert sorted(p.name for p in writer.folder.iterdir() if not p.name[0].isdigit()) == ["grid.png"]
    written = torch.stack([read(p) for p in pngs(writer.folder)])
    assert torch.equal(written, to_uint8(torch.cat(predicted), model.value_range))
    assert len({tuple(image.flatten().tolist()) for image in written}) == 10  # every image its own noise

    with pytest.raises(FileExistsError, match="already holds predictions; choose another --predictions.dirpath"):
        L.Trainer(**{**trainer_kwargs, "callbacks": [PredictionWriter(dirpath=str(tmp_path / "out"))]}).predict(
            model, datamodule=EmbeddedMNIST(batch_size=4, predict_size=10))
