"""Prepared datasets (`lit-gan prepare`, `--data Prepared`): the same pixels as the source, an
interrupted or failed prepare never taken for a finished one, refused mismatches, exact resume."""

from __future__ import annotations

import collections
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
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
from tests.integration import ddp_script

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


@pytest.mark.integration  # end-to-end: lit-gan prepare, fit and validate
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


ddp_script.job(__name__, "prepared_shares", "prepared")  # SCRIPT's fit, a job of the suite's one 2-process launch


@pytest.mark.integration
@pytest.mark.xdist_group(ddp_script.ONE_PROCESS)
def test_two_ddp_processes_read_disjoint_shares(request, tmp_path_factory):
    run = ddp_script.launch(request.session, tmp_path_factory).check("prepared_shares")
    seen = [torch.load(run / f"seen_{rank}.pt") for rank in (0, 1)]
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


# ------------------------------------------------------------- checked at load, safe to write
def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.fixture(scope="module")
def mnist8(tmp_path_factory) -> Path:
    """EmbeddedMNIST at 8x8, prepared once: 4500 train, 500 val images; copy it before damaging it."""
    return prepare(EmbeddedMNIST(image_size=8), tmp_path_factory.mktemp("mnist8") / "prep")


def test_a_truncated_array_is_named_in_one_line_with_the_fix(tmp_path, mnist8):
    out = Path(shutil.copytree(mnist8, tmp_path / "prep"))
    images = out / "train" / "images.npy"
    size = images.stat().st_size
    os.truncate(images, size - 100)
    dm = Prepared(path=str(out))
    with pytest.raises(ValueError) as error:
        dm.setup("fit")
    assert one_line(error) == (
        f"{images} is truncated: {size - 100:,} bytes, expected {size:,} for images of shape (4500, 1, 8, 8); prepare "
        f"it again with `lit-gan prepare --data EmbeddedMNIST ... --out {out} --overwrite true` (its arguments are "
        "in record.json)")


def edit_record(**changes):
    def edit(out: Path) -> None:
        record = json.loads((out / "record.json").read_text())
        for key, value in changes.items():
            if isinstance(value, dict):
                record[key] = {**record[key], **value}
            else:
                record[key] = value
        (out / "record.json").write_text(json.dumps(record))
    return edit


@pytest.mark.parametrize("damage, error, message", [
    (edit_record(image_shape=[1, 16, 16]), ValueError,
     r"{out}/train/images\.npy: images of shape \(4500, 1, 8, 8\), expected \(4500, 1, 16, 16\) from record\.json"),
    (edit_record(image_shape=[3, 8, 8]), ValueError, r"{out}/train/images\.npy: images of shape \(4500, 1, 8, 8\)"),
    (edit_record(num_classes=5), ValueError,
     r"{out}/train/labels\.npy: labels run 0\.\.9, but record\.json says num_classes 5 \(labels 0\.\.4\)"),
    (edit_record(num_classes=0), ValueError, r"{out}/train/labels\.npy: labels run 0\.\.9, .*num_classes 0"),
    (edit_record(splits={"train": 4000}), ValueError,
     r"{out}/train/images\.npy holds 4500 images, but record\.json says 4000"),
    (edit_record(splits={"val": 501}), ValueError,
     r"{out}/val/images\.npy holds 500 images, but record\.json says 501"),
    (edit_record(splits={"test": 500}), FileNotFoundError, r"{out}/test/images\.npy is missing"),
    (lambda out: np.save(out / "val" / "labels.npy", np.arange(10)), ValueError,
     r"{out}/val/labels\.npy: labels of shape \(10,\), expected \(500,\) \(one label per image\)"),
    (lambda out: np.save(out / "val" / "images.npy", np.zeros((500, 1, 8, 8), np.float32)), ValueError,
     r"{out}/val/images\.npy: images are float32, expected uint8"),
    (lambda out: (out / "val" / "labels.npy").write_bytes(b"not numpy"), ValueError,
     r"{out}/val/labels\.npy is not a readable NumPy array file"),
    (lambda out: (out / "val" / "labels.npy").unlink(), FileNotFoundError, r"{out}/val/labels\.npy is missing"),
], ids=["shape", "channels", "num_classes", "unlabeled", "train_count", "val_count", "test_count", "labels_length",
        "dtype", "not_npy", "missing"])
def test_a_record_that_disagrees_with_its_arrays_is_refused_in_one_line(tmp_path, mnist8, damage, error, message):
    out = Path(shutil.copytree(mnist8, tmp_path / "prep"))
    damage(out)
    dm = Prepared(path=str(out))
    with pytest.raises(error) as refused:
        dm.setup("fit")
    assert re.match(message.format(out=re.escape(str(out))) + f".*; prepare it again with `lit-gan prepare --data "
                    rf"EmbeddedMNIST \.\.\. --out {re.escape(str(out))} --overwrite true`", one_line(refused))


@pytest.mark.parametrize("field, value", [("image_shape", "8x8"), ("num_classes", -1), ("splits", [4500, 500])])
def test_a_malformed_record_is_refused_naming_the_field(tmp_path, mnist8, field, value):
    out = Path(shutil.copytree(mnist8, tmp_path / "prep"))
    edit_record(**{field: value})(out)
    with pytest.raises(ValueError) as refused:
        Prepared(path=str(out))
    assert one_line(refused).startswith(f"{out}/record.json: {field} is {value!r}, expected ")
    assert f"--out {out} --overwrite true" in str(refused.value)


def fake_disk(monkeypatch, free: int) -> None:
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - free, free))


def test_a_disk_without_room_is_refused_before_anything_is_written(tmp_path, monkeypatch, cli_env, capsys):
    reserved = []
    monkeypatch.setattr(os, "posix_fallocate", lambda *args: reserved.append(args))
    fake_disk(monkeypatch, free=300_000)  # the arrays take 360,512 bytes
    out = tmp_path / "prep"
    with pytest.raises(prepared_module.NoSpace) as refused:
        prepare(EmbeddedMNIST(image_size=8), out)
    needed = 4500 * 72 + 500 * 72 + 4 * 128 + prepared_module.SPARE
    assert one_line(refused) == (
        f"no space left on device: preparing {out} needs 1.4 MB ({needed:,} bytes), the disk of {out}.partial has "
        "300.0 kB (300,000 bytes) free; free some space there or choose another --out")
    assert refused.value.errno == errno.ENOSPC and isinstance(refused.value, (OSError, ValueError))
    assert not reserved and not out.exists() and not (tmp_path / "prep.partial").exists()
    with pytest.raises(SystemExit) as stopped:  # the CLI shows it as one line
        main(["prepare", "--data=EmbeddedMNIST", "--data.init_args.image_size=8", f"--out={out}"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"lit-gan: error: {refused.value}"]


def test_a_disk_that_fills_while_reserving_stops_cleanly_and_gives_the_space_back(tmp_path, monkeypatch):
    calls = []

    def fallocate(fd, offset, length):
        calls.append(length)
        if len(calls) == 3:  # train's two arrays are reserved, val's images are not
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, offset, length)

    real = os.posix_fallocate
    monkeypatch.setattr(os, "posix_fallocate", fallocate)
    out = tmp_path / "prep"
    with pytest.raises(prepared_module.NoSpace) as refused:
        prepare(EmbeddedMNIST(image_size=8), out)
    assert one_line(refused) == (
        f"no space left on device while preparing {out} ({out}.partial/val/images.npy): No space left on device; "
        "free some space there and run the same `lit-gan prepare` again (it continues where it stopped)")
    assert refused.value.errno == errno.ENOSPC
    assert not out.exists() and not (tmp_path / "prep.partial").exists()  # nothing looks finished, nothing kept
    with pytest.raises(FileNotFoundError, match="not a prepared dataset"):
        Prepared(path=str(out))
    monkeypatch.setattr(os, "posix_fallocate", real)
    assert Prepared(path=str(prepare(EmbeddedMNIST(image_size=8), out))).image_shape == (1, 8, 8)


def test_a_disk_that_fills_while_writing_keeps_the_finished_blocks_for_a_rerun(tmp_path, monkeypatch):
    monkeypatch.setattr(prepared_module, "BLOCK", 1000)
    write_json = prepared_module._write_json
    writes = []

    def filling(path, value):
        writes.append(path.name)
        if len(writes) == 4:  # progress.json before the blocks, then after blocks 0 and 1000; not after 2000
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write_json(path, value)

    monkeypatch.setattr(prepared_module, "_write_json", filling)
    out = tmp_path / "prep"
    with pytest.raises(prepared_module.NoSpace, match=rf"^no space left on device while preparing {out} .*progress"):
        prepare(EmbeddedMNIST(image_size=8), out)
    assert not out.exists()
    with pytest.raises(FileNotFoundError, match="is not finished"):
        Prepared(path=str(out))
    assert json.loads((tmp_path / "prep.partial" / "progress.json").read_text())["blocks"] == {"train": [0, 1000]}
    monkeypatch.setattr(prepared_module, "_write_json", write_json)
    dm = Prepared(path=str(prepare(EmbeddedMNIST(image_size=8), out)))
    dm.setup("fit")
    reference = EmbeddedMNIST(image_size=8)
    reference.setup("fit")
    assert torch.equal(dm.train_set.images, reference.train_set.images)


def test_without_fallocate_the_arrays_are_reserved_with_zeros(tmp_path, monkeypatch, mnist8):
    monkeypatch.delattr(os, "posix_fallocate")
    monkeypatch.setattr(prepared_module, "ZEROS", 1000)  # several writes per array
    out = prepare(EmbeddedMNIST(image_size=8), tmp_path / "prep")
    for split in ("train", "val"):
        for name in ("images.npy", "labels.npy"):
            assert (out / split / name).read_bytes() == (mnist8 / split / name).read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["record.json", "train", "val"]


HOLD = """import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_prepare_into_the_same_out_stops_naming_the_first(tmp_path, cli_env, capsys):
    out = tmp_path / "prep"
    (tmp_path / "prep.partial").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "prep.partial" / prepared_module.LOCK)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(FileExistsError) as refused:
            prepare(EmbeddedMNIST(image_size=8), out)
        assert one_line(refused) == (f"another `lit-gan prepare` (pid {holder.pid}) is writing to {out}; "
                                     "wait for it or choose another --out")
        assert (tmp_path / "prep.partial" / prepared_module.LOCK).is_file() and not out.exists()  # left alone
        with pytest.raises(SystemExit) as stopped:
            main(["prepare", "--data=EmbeddedMNIST", "--data.init_args.image_size=8", f"--out={out}"])
        assert stopped.value.code == 2 and f"lit-gan: error: another `lit-gan prepare` (pid {holder.pid})" in \
            capsys.readouterr().err
    finally:
        holder.kill()  # a prepare that dies: its lock goes with it
        holder.wait()
    prepare(EmbeddedMNIST(image_size=8), out)
    assert sorted(p.name for p in out.iterdir()) == ["record.json", "train", "val"]
    assert not (tmp_path / "prep.partial").exists()
