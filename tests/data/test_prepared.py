"""Prepared datasets (`lit-gan prepare`, `--data Prepared`): the same pixels as the source, an
interrupted or failed prepare never taken for a finished one, refused mismatches, exact resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from lit_gan.callbacks import LastCheckpoint
from lit_gan.cli import main
from lit_gan.data import EmbeddedMNIST, ImageFolder, Prepared
from lit_gan.data import prepared as prepared_module
from lit_gan.data.base import ResumableLoader
from lit_gan.data.prepared import prepare
from lit_gan.metrics.cache import fingerprint, split_tensors
from lit_gan.models import DCGAN
from tests.conftest import tiny
from tests.fixtures import save_png

SCRIPT = Path(__file__).with_name("prepared_ddp_script.py")


def labeled(root: Path, per_class: int = 24) -> Path:
    """root/a/*.png and root/b/*.png, 40x36 random images (crop and resize both matter)."""
    for c, name in enumerate("ab"):
        for i in range(per_class):
            save_png(root / name / f"{i:03d}.png", size=(40, 36), seed=100 * c + i)
    return root


def split_pixels(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return dataset.images.clone(), dataset.labels.clone()


def test_prepared_folder_holds_the_source_pixels_labels_and_record(tmp_path):
    root = labeled(tmp_path / "images")
    source = ImageFolder(root=str(root), image_size=32, in_memory=True, batch_size=4)
    source.setup("fit")
    out = prepare(ImageFolder(root=str(root), image_size=32, batch_size=4), tmp_path / "prep", workers=2)
    dm = Prepared(path=str(out), batch_size=4)
    dm.setup("fit")
    for split in ("train", "val"):
        a, b = split_pixels(getattr(source, f"{split}_set")), split_pixels(getattr(dm, f"{split}_set"))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), split
    record = json.loads((out / "record.json").read_text())
    assert record["splits"] == {"train": 43, "val": 5, "test": "val"} and record["image_shape"] == [3, 32, 32]
    assert record["source"]["args"]["root"] == str(root) and "center-crop" in record["transform"]
    assert (dm.num_classes, dm.class_names, dm.image_shape) == (2, ["a", "b"], (3, 32, 32))
    assert dm.cache_identity() == source.cache_identity()  # shares the source's classifier and statistics
    for split in ("val", "test"):  # what the evaluation's real statistics are computed from, and keyed by
        assert torch.equal(split_tensors(dm, split)[0], split_tensors(source, split)[0])
        assert fingerprint(dm, split) == fingerprint(source, split)
    images, labels = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert images.dtype == torch.float32 and images.shape == (4, 3, 32, 32) and -1 <= images.min() < images.max() <= 1
    assert not (tmp_path / "prep.partial").exists()


def test_a_corrupt_file_stops_prepare_with_its_name_and_a_rerun_continues(tmp_path, monkeypatch):
    monkeypatch.setattr(prepared_module, "BLOCK", 8)
    root = labeled(tmp_path / "images")
    bad = root / "b" / "010.png"
    good = bad.read_bytes()
    bad.write_bytes(b"not a png at all")
    out = tmp_path / "prep"
    with pytest.raises(ValueError, match=f"cannot read image {bad}: .*remove or fix it"):
        prepare(ImageFolder(root=str(root), image_size=32, seed=1), out, workers=2)
    assert not out.exists()  # nothing half-written is where a finished dataset would be
    with pytest.raises(FileNotFoundError, match="is not finished .*re-run the same `lit-gan prepare`"):
        Prepared(path=str(out))
    progress = json.loads((tmp_path / "prep.partial" / "progress.json").read_text())
    done_before = progress["blocks"]["train"]
    assert 0 < len(done_before) < 6  # some blocks of 8 were written before the bad file's block

    bad.write_bytes(good)
    read = []
    original = ImageFolder.setup

    def counting_setup(self, stage=None):  # count the files the re-run decodes
        original(self, stage)
        files = self.train_set.dataset
        get = files.__getitem__
        files.__class__ = type("Counting", (type(files),), {"__getitem__": lambda s, i: (read.append(i), get(i))[1]})

    monkeypatch.setattr(ImageFolder, "setup", counting_setup)
    prepare(ImageFolder(root=str(root), image_size=32, seed=1), out, workers=2)
    assert len(read) == 48 - 8 * len(done_before)  # finished blocks are not read again
    monkeypatch.setattr(ImageFolder, "setup", original)
    reference = ImageFolder(root=str(root), image_size=32, in_memory=True, seed=1)
    reference.setup("fit")
    dm = Prepared(path=str(out))
    dm.setup("fit")
    assert torch.equal(dm.train_set.images, reference.train_set.images)
    assert torch.equal(dm.val_set.labels, reference.val_set.labels)


def test_finished_output_is_never_overwritten_without_asking(tmp_path):
    out = prepare(EmbeddedMNIST(image_size=8), tmp_path / "prep")
    stamp = (out / "train" / "images.npy").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="prepared already from this very source.*--overwrite true"):
        prepare(EmbeddedMNIST(image_size=8), out)
    with pytest.raises(FileExistsError, match="from another source"):
        prepare(EmbeddedMNIST(image_size=16), out)
    assert (out / "train" / "images.npy").stat().st_mtime_ns == stamp
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a prepared dataset"):
        prepare(EmbeddedMNIST(image_size=8), other)
    assert (other / "mine.txt").read_text() == "keep"
    prepare(EmbeddedMNIST(image_size=16), out, overwrite=True)
    assert Prepared(path=str(out)).image_shape == (1, 16, 16)


def test_mismatched_size_or_channels_are_refused_with_the_fix(tmp_path):
    out = prepare(EmbeddedMNIST(image_size=16), tmp_path / "prep")
    with pytest.raises(ValueError, match=r"holds 16x16 images .*image_size=32 .*--data.init_args.image_size 16"):
        Prepared(path=str(out), image_size=32)
    with pytest.raises(ValueError, match="holds 1-channel images, but channels=3"):
        Prepared(path=str(out), channels=3)
    with pytest.raises(FileNotFoundError, match="not a prepared dataset .*lit-gan prepare"):
        Prepared(path=str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="cannot open s3://bucket/celeba64: .*install the fsspec driver .*s3fs"):
        Prepared(path="s3://bucket/celeba64")
    assert Prepared(path=str(out), image_size=16, channels=1).image_shape == (1, 16, 16)


def test_cli_prepares_then_trains_and_validates_from_it(tmp_path, cli_env, capsys):
    from tests.fixtures import TINY_CLI

    main(["prepare", "--data=EmbeddedMNIST", "--data.init_args.image_size=28", f"--out={tmp_path / 'prep'}"])
    assert f"--data.init_args.path {tmp_path / 'prep'}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["prepare", "--data=EmbeddedMNIST", f"--out={tmp_path / 'prep'}"])
    assert refused.value.code == 2 and "prepared already" in capsys.readouterr().err
    run = tmp_path / "run"
    cli = main(["fit", "--model=CDCGAN", *TINY_CLI, "--data=Prepared", f"--data.init_args.path={tmp_path / 'prep'}",
                "--data.init_args.batch_size=16", f"--trainer.default_root_dir={run}"])
    assert cli.model.num_classes == 10 and cli.model.batches_seen == 2
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert "val/d_loss" in (run / "metrics.csv").read_text()


class SignalAt(L.Callback):
    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGTERM)


def fit(root: Path, data: Path, *callbacks: L.Callback, ckpt_path: Path | None = None) -> DCGAN:
    torch.manual_seed(0)
    model = tiny(DCGAN, image_shape=(3, 32, 32))
    trainer = L.Trainer(default_root_dir=root, accelerator="cpu", max_epochs=2, limit_val_batches=0, logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[LastCheckpoint(dirpath=str(root / "checkpoints")), *callbacks])
    trainer.fit(model, Prepared(path=str(data), batch_size=8), ckpt_path=ckpt_path)
    return model


def test_training_from_a_prepared_folder_resumes_mid_epoch_exactly(tmp_path):
    data = prepare(ImageFolder(root=str(labeled(tmp_path / "images")), image_size=32), tmp_path / "prep")
    straight = fit(tmp_path / "straight", data)
    with pytest.raises(SystemExit):
        fit(tmp_path / "split", data, SignalAt(batch=2))
    last = tmp_path / "split" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 1, "batches": 3}]
    resumed = fit(tmp_path / "split", data, ckpt_path=last)
    assert resumed.batches_seen == straight.batches_seen == 10  # 43 train images, batch 8: 5 per epoch
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_file_datasets_get_workers_and_in_memory_ones_none(tmp_path):
    root = labeled(tmp_path / "images", per_class=4)
    lazy = ImageFolder(root=str(root), image_size=8, in_memory=False, batch_size=2)
    memory = ImageFolder(root=str(root), image_size=8, in_memory=True, batch_size=2)
    expected = min(len(os.sched_getaffinity(0)), 8)
    loader = lazy.train_dataloader()
    assert isinstance(loader, ResumableLoader) and loader.num_workers == expected and loader.persistent_workers
    assert memory.train_dataloader().num_workers == 0
    assert ImageFolder(root=str(root), image_size=8, in_memory=False, num_workers=0, batch_size=2).train_dataloader().num_workers == 0


@pytest.mark.integration
def test_two_ddp_processes_read_disjoint_shares(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert done.returncode == 0, done.stderr[-3000:]
    seen = [torch.load(tmp_path / f"seen_{rank}.pt") for rank in (0, 1)]
    for epoch in (0, 1):
        a, b = (s[epoch] for s in seen)
        assert len(a) == len(b) == 32  # 64 images, 2 ranks, 4 batches of 8 each
        assert not set(a.tolist()) & set(b.tolist())  # disjoint
        assert set(a.tolist()) | set(b.tolist()) == set(range(64))
    assert seen[0][0].tolist() != seen[0][1].tolist()  # reshuffled by epoch


def test_a_prepared_dataset_at_a_url_is_copied_once_and_trained_from(tmp_path):
    import fsspec

    out = prepare(EmbeddedMNIST(image_size=8), tmp_path / "prep")
    store = fsspec.filesystem("memory")
    store.put(str(out), "/bucket/mnist8", recursive=True)
    url = "memory://bucket/mnist8"
    with pytest.raises(FileNotFoundError, match="memory://bucket/none is not a prepared dataset"):
        Prepared(path="memory://bucket/none")
    dm = Prepared(path=url, cache_dir=str(tmp_path / "cache"), batch_size=16)
    assert dm.image_shape == (1, 8, 8) and dm.num_classes == 10  # from the remote record, before any copy
    dm.setup("fit")
    local = Prepared(path=str(out))
    local.setup("fit")
    assert torch.equal(dm.train_set.images, local.train_set.images)
    copies = list((tmp_path / "cache").iterdir())
    assert len(copies) == 1 and (copies[0] / "record.json").is_file()
    store.rm("/bucket/mnist8/train/images.npy")  # a second run uses its copy, not the store
    again = Prepared(path=url, cache_dir=str(tmp_path / "cache"))
    again.setup("fit")
    assert torch.equal(again.train_set.images, local.train_set.images)
    store.rm("/bucket", recursive=True)


def test_a_ddp_ranks_share_resumes_at_the_batch_it_stopped_at():
    """Under DDP Lightning wraps the epoch order in a DistributedSamplerWrapper: a resumed rank
    goes on with the first batch of its own share it had not trained on."""
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    from lit_gan.data.base import EpochShuffle, UInt8Images, _collate_pair

    data = UInt8Images(torch.zeros(40, 1, 2, 2, dtype=torch.uint8), torch.arange(40))

    def labels(resume=None):
        sampler = DistributedSamplerWrapper(EpochShuffle(40, seed=3), num_replicas=2, rank=1, shuffle=False)
        loader = ResumableLoader(data, sampler=sampler, batch_size=4, collate_fn=_collate_pair, drop_last=True)
        if resume:
            loader.load_state_dict(resume)
        sampler.set_epoch(1)
        return [batch[1].tolist() for batch in loader]

    straight = labels()
    assert len(straight) == 5
    assert labels({"epoch": 1, "batches": 2}) == straight[2:]
    assert labels({"epoch": 0, "batches": 2}) == straight  # a resume point of another epoch skips nothing
