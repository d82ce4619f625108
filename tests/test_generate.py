"""`lit-gan generate` and fine-tuning from another run's weights."""

import inspect
import re
import shutil
import zipfile
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from lit_gan import generate
from lit_gan.cli import main
from lit_gan.generate import FORMATS
from lit_gan.images import to_uint8
from lit_gan.models import CDCGAN, DCGAN
from tests.conftest import tiny


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "model.ckpt"
    model = tiny(CDCGAN, num_classes=10)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "pytorch-lightning_version": "2.6.6"}, path)
    return path


def test_samples_for_a_chosen_label_are_reproducible(checkpoint, tmp_path):
    main(["generate", "samples", f"--checkpoint={checkpoint}", "--labels=[3]", "--num=5", f"--out={tmp_path / 'a'}"])
    main(["generate", "samples", f"--checkpoint={checkpoint}", "--labels=[3]", "--num=5", f"--out={tmp_path / 'b'}"])
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["000000.png", "000001.png", "000002.png", "000003.png", "000004.png", "grid.png"]
    assert Image.open(tmp_path / "a" / "000000.png").size == (28, 28)
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # the files are what the model draws for label 3 with the seeded noise
    model = generate.load(checkpoint)
    expected = generate._draw(model, generate._noise(model, 5, 0), torch.full((5,), 3))
    saved = torch.tensor(list(Image.open(tmp_path / "a" / "000001.png").getdata()), dtype=torch.float).view(28, 28)
    assert torch.allclose(saved, ((expected[1, 0] + 1) / 2 * 255).round(), atol=1)


def test_other_labels_and_seeds_give_other_images(checkpoint, tmp_path):
    model = generate.load(checkpoint)
    z = generate._noise(model, 4, 0)
    assert not torch.equal(generate._draw(model, z, torch.full((4,), 1)), generate._draw(model, z, torch.full((4,), 2)))
    assert not torch.equal(z, generate._noise(model, 4, 1))


def test_interpolation_starts_and_ends_at_the_two_latents():
    a, b = torch.randn(1, 1, 16), torch.randn(1, 1, 16)
    t = torch.linspace(0, 1, 5).view(1, 5, 1)
    path = generate.slerp(a, b, t)
    torch.testing.assert_close(path[0, 0], a[0, 0])
    torch.testing.assert_close(path[0, -1], b[0, 0])
    # slerp keeps the norm of unit vectors (lerp would shrink it halfway)
    u, v = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
    assert generate.slerp(u, v, t).norm(dim=-1).sub(1).abs().max() < 1e-5


def test_interpolation_and_arithmetic_write_grids(checkpoint, tmp_path):
    main(["generate", "interpolate", f"--checkpoint={checkpoint}", "--pairs=2", "--steps=6", "--label=4", f"--out={tmp_path / 'i'}"])
    assert Image.open(tmp_path / "i" / "grid.png").size == (6 * 30 + 2, 2 * 30 + 2)
    main(["generate", "arithmetic", f"--checkpoint={checkpoint}", "--a=[0,1]", "--b=[2]", "--c=[3,4]", f"--out={tmp_path / 'x'}"])
    assert Image.open(tmp_path / "x" / "grid.png").size == (4 * 30 + 2, 30 + 2)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--labels=[10]"], "labels must lie in 0..9"),
        (["--out={out}"], "is not empty"),
        (["--format=jpg"], "--format must be one of png, pt, npz"),
        (["--grid=-1"], "--grid is a number of images"),
    ],
)
def test_generate_bad_input(checkpoint, tmp_path, capsys, args, message):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.png").write_bytes(b"x")
    args = [a.format(out=tmp_path / "taken") for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "samples", f"--checkpoint={checkpoint}", *args, f"--out={tmp_path / 'fresh'}"] if "--out" not in args[0] else ["generate", "samples", f"--checkpoint={checkpoint}", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "taken" / "keep.png").read_bytes() == b"x"


def test_fine_tuning_starts_from_another_runs_weights(checkpoint):
    source = torch.load(checkpoint, weights_only=True)["state_dict"]
    same = tiny(CDCGAN, num_classes=10)
    assert same.load_weights(str(checkpoint)) == []  # nothing skipped
    assert all(torch.equal(v, source[k]) for k, v in same.state_dict().items() if not k.startswith("grid_"))
    # another dataset with 3 channels and 5 classes: what fits is loaded, the rest stays fresh
    other = tiny(CDCGAN, image_shape=(3, 28, 28), num_classes=5)
    skipped = other.load_weights(str(checkpoint))
    state = other.state_dict()
    assert torch.equal(state["generator.upsample.0.weight"], source["generator.upsample.0.weight"])
    assert state["generator.upsample.3.weight"].shape != source["generator.upsample.3.weight"].shape
    assert "generator.upsample.3.weight" in skipped and "generator.upsample.0.weight" not in skipped
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        DCGAN().load_weights("missing.ckpt")


@pytest.fixture(scope="module")
def unconditional(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "dcgan.ckpt"
    model = tiny(DCGAN)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


def test_interpolation_and_arithmetic_work_for_unconditional_models(unconditional, tmp_path):
    grid = generate.interpolate(str(unconditional), out=tmp_path / "i", pairs=2, steps=3)
    assert Image.open(grid).size == (3 * 30 + 2, 2 * 30 + 2)
    grid = generate.arithmetic(str(unconditional), a=[0], b=[1], c=[2], out=tmp_path / "a", num=4)
    assert Image.open(grid).size == (4 * 30 + 2, 30 + 2)
    with pytest.raises(ValueError, match="not conditional"):
        generate.interpolate(str(unconditional), out=tmp_path / "j", label=3)


def test_counts_below_one_are_explained(unconditional, tmp_path):
    for call in (lambda: generate.samples(str(unconditional), out=tmp_path / "s", num=0),
                 lambda: generate.interpolate(str(unconditional), out=tmp_path / "t", steps=0),
                 lambda: generate.arithmetic(str(unconditional), a=[0], b=[0], c=[0], out=tmp_path / "u", num=0)):
        with pytest.raises(ValueError, match="must be at least 1"):
            call()


def test_overwrite_leaves_no_older_images_behind(unconditional, tmp_path):
    out = tmp_path / "samples"
    generate.samples(str(unconditional), out=out, num=5)
    (out / "notes.txt").write_text("mine")
    generate.samples(str(unconditional), out=out, num=2, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png", "grid.png", "notes.txt"]


def test_a_fine_tuned_checkpoint_is_self_contained(checkpoint, tmp_path):
    source = tmp_path / "source.ckpt"
    source.write_bytes(checkpoint.read_bytes())
    tuned = tiny(CDCGAN, num_classes=10)
    tuned.load_weights(str(source))
    saved = tmp_path / "tuned.ckpt"
    torch.save({"state_dict": tuned.state_dict(), "hyper_parameters": dict(tuned.hparams)}, saved)
    source.unlink()  # the source run was moved away
    loaded = CDCGAN.load_from_checkpoint(saved)
    assert all(torch.equal(v, tuned.state_dict()[k]) for k, v in loaded.state_dict().items())
    assert generate.samples(str(saved), out=tmp_path / "s", num=2).is_file()


def test_the_grid_shows_at_most_grid_images(checkpoint, tmp_path):
    main(["generate", "samples", f"--checkpoint={checkpoint}", "--num=100", f"--out={tmp_path / 'a'}"])
    assert len(list((tmp_path / "a").glob("0*.png"))) == 100
    assert Image.open(tmp_path / "a" / "grid.png").size == (8 * 30 + 2, 8 * 30 + 2)  # the first 64, 8 per row
    main(["generate", "samples", f"--checkpoint={checkpoint}", "--num=10", "--grid=0", f"--out={tmp_path / 'b'}"])
    assert not (tmp_path / "b" / "grid.png").exists() and len(list((tmp_path / "b").glob("0*.png"))) == 10


def test_samples_as_one_tensor_or_array_file(checkpoint, tmp_path):
    common = ["generate", "samples", f"--checkpoint={checkpoint}", "--num=23", "--labels=[2,5]"]
    main([*common, f"--out={tmp_path / 'png'}"])
    main([*common, "--format=pt", "--batch_size=5", f"--out={tmp_path / 'pt'}"])  # drawn in 5 batches
    main([*common, "--format=npz", f"--out={tmp_path / 'npz'}"])
    assert sorted(p.name for p in (tmp_path / "pt").iterdir()) == ["grid.png", "samples.pt"]
    saved = torch.load(tmp_path / "pt" / "samples.pt", weights_only=True)
    arrays = np.load(tmp_path / "npz" / "samples.npz")
    assert saved["images"].dtype == torch.uint8 and saved["images"].shape == (23, 1, 28, 28)
    assert saved["labels"].tolist() == [2, 5] * 11 + [2] and arrays["labels"].tolist() == saved["labels"].tolist()
    assert np.array_equal(arrays["images"], saved["images"].numpy())  # batching does not change the images
    png = np.array(Image.open(tmp_path / "png" / "000007.png"))
    assert np.array_equal(png, arrays["images"][7, 0])  # the same pixels as the PNG of the same sample


# --------------------------------------------------------------------------- streaming `samples`
def latent10_checkpoint(folder: Path, cls: type, **kwargs) -> Path:
    """A model whose latent size (10) is no multiple of 16: a one-shot `randn(num, 10)` redraws
    its last 16 numbers, so it depends on num; the streamed noise does not."""
    model = tiny(cls, latent={"dim": 10}, **kwargs)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, folder / "latent10.ckpt")
    return folder / "latent10.ckpt"


@pytest.fixture(scope="module")
def latent10(tmp_path_factory) -> Path:
    return latent10_checkpoint(tmp_path_factory.mktemp("gen"), CDCGAN, num_classes=10)


def stream_images(checkpoint: Path, num: int, labels: torch.Tensor | None, seed: int = 0) -> torch.Tensor:
    """uint8 images of sample 0..num-1 as specified: z of sample i is row i of one generator stream
    of normal numbers (drawn in one go, here), whatever num and the batch size."""
    model = generate.load(checkpoint)
    d = model.latent_dim
    stream = torch.randn(-(-num * d // 16) * 16, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images = model.generate(z=stream[: num * d].view(num, d), labels=labels)
    return to_uint8(images, model.value_range)


def test_sample_i_is_the_same_for_any_num_and_batch_size(latent10, tmp_path):
    k = 5
    short = np.load(generate.samples(str(latent10), out=tmp_path / "k", num=k, format="npz"))
    long = np.load(generate.samples(str(latent10), out=tmp_path / "2k", num=2 * k, format="npz", batch_size=3))
    assert np.array_equal(short["images"], long["images"][:k])  # the first k of --num 2k are --num k
    assert np.array_equal(short["labels"], long["labels"][:k])
    assert np.array_equal(long["images"], stream_images(latent10, 2 * k, torch.arange(2 * k)).numpy())


def test_pt_and_npz_hold_what_the_pngs_show(latent10, tmp_path):
    common = dict(num=7, labels=[4, 1], seed=3, grid=4)
    generate.samples(str(latent10), out=tmp_path / "png", batch_size=2, **common)
    pt = generate.samples(str(latent10), out=tmp_path / "pt", format="pt", batch_size=3, **common)
    npz = generate.samples(str(latent10), out=tmp_path / "npz", format="npz", batch_size=500, **common)
    assert sorted(p.name for p in pt.parent.iterdir()) == ["grid.png", "samples.pt"]  # no .partial left
    labels = torch.tensor([4, 1, 4, 1, 4, 1, 4])
    expected = stream_images(latent10, 7, labels, seed=3)
    saved, arrays = torch.load(pt, weights_only=True), np.load(npz)
    assert saved["images"].dtype == torch.uint8 and saved["images"].shape == (7, 1, 28, 28)
    assert torch.equal(saved["images"], expected) and torch.equal(saved["labels"], labels)
    assert torch.equal(torch.load(pt, weights_only=True, mmap=True)["images"], expected)  # lazily, too
    assert sorted(arrays.files) == ["images", "labels"] and arrays["labels"].dtype == np.int64
    assert np.array_equal(arrays["images"], expected.numpy()) and np.array_equal(arrays["labels"], labels.numpy())
    for i in range(7):
        assert np.array_equal(np.array(Image.open(tmp_path / "png" / f"{i:06d}.png")), expected[i, 0].numpy())
    for name in ("pt", "npz"):
        assert (tmp_path / name / "grid.png").read_bytes() == (tmp_path / "png" / "grid.png").read_bytes()
    for path in (pt, npz):
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None  # every entry's CRC-32 matches its bytes


def test_a_run_that_fails_halfway_leaves_no_half_file(latent10, tmp_path, monkeypatch):
    draw, calls = generate._draw, []

    def fail_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return draw(*args)

    monkeypatch.setattr(generate, "_draw", fail_second)
    for format in ("pt", "npz"):
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            generate.samples(str(latent10), out=tmp_path / format, num=7, format=format, batch_size=3)
        assert list((tmp_path / format).iterdir()) == []  # no samples.pt / .npz, whole or partial
    monkeypatch.setattr(generate, "_draw", draw)
    (tmp_path / "pt" / "samples.pt.partial").write_bytes(b"left by a killed run")
    generate.samples(str(latent10), out=tmp_path / "pt", num=2, format="pt", grid=0, overwrite=True)
    assert [p.name for p in (tmp_path / "pt").iterdir()] == ["samples.pt"]


def test_samples_of_an_unconditional_model_as_pt_and_npz(tmp_path):
    checkpoint = latent10_checkpoint(tmp_path, DCGAN)
    pt = generate.samples(str(checkpoint), out=tmp_path / "pt", num=6, format="pt", batch_size=4, grid=0)
    npz = generate.samples(str(checkpoint), out=tmp_path / "npz", num=6, format="npz", batch_size=4, grid=0)
    saved, arrays = torch.load(pt, weights_only=True), np.load(npz)
    assert saved["labels"] is None and arrays.files == ["images"]
    expected = stream_images(checkpoint, 6, None)
    assert torch.equal(saved["images"], expected) and np.array_equal(arrays["images"], expected.numpy())


class LargestTensor(TorchDispatchMode):
    """The largest storage (bytes) any torch operation produces while active. `lift_fresh` only
    hands on a tensor made outside the dispatcher (`torch.from_numpy`: the .pt placeholder, which
    maps a sparse file and is never touched), so it does not count."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes, self.op = 0, None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is not torch.ops.aten.lift_fresh.default:
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor) and t.untyped_storage().nbytes() > self.bytes:
                    self.bytes, self.op = t.untyped_storage().nbytes(), func
        return out


@pytest.mark.parametrize("format", ["png", "pt", "npz"])
def test_memory_is_one_batch_whatever_num(checkpoint, tmp_path, format):
    def largest(num: int) -> int:
        with LargestTensor() as mode:
            generate.samples(str(checkpoint), out=tmp_path / str(num), num=num, format=format, batch_size=16, grid=16)
        return mode.bytes

    one_batch = largest(16)
    assert largest(20 * 16) <= one_batch  # no noise, image or label tensor for all 320 at once


DiskUsage = namedtuple("DiskUsage", "total used free")


def fake_disk(free: int):
    """A stand-in for `shutil.disk_usage`: a disk with `free` bytes free."""
    return lambda path: DiskUsage(total=10 * free, used=9 * free, free=free)


@pytest.mark.parametrize("format", ["png", "pt", "npz"])
def test_what_the_disk_cannot_hold_is_refused_before_drawing(checkpoint, tmp_path, capsys, monkeypatch, format):
    monkeypatch.setattr(shutil, "disk_usage", fake_disk(40 * 784))  # 30.6 KiB: not even the 40 images' pixels
    monkeypatch.setattr(generate, "_draw", lambda *args: pytest.fail("drew images"))
    out = tmp_path / "new" / "samples"
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "samples", f"--checkpoint={checkpoint}", "--num=40", f"--format={format}", f"--out={out}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lit-gan: error: 40 images (1x28x28) as")
    assert f"of disk but {tmp_path} has 30.6 KiB free" in err and "--num" in err and "--out" in err
    assert list(tmp_path.iterdir()) == [], "nothing is written"


def test_an_absurd_num_is_refused_up_front(checkpoint, tmp_path, monkeypatch):
    """--num 1e8 of 28x28 images (73 GiB) on a disk with 50 GiB free: refused before any noise,
    label or image tensor is made (the address space is capped, so a try fails fast)."""
    resource = pytest.importorskip("resource")
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("needs /proc/self/status (Linux)")
    vm = int(next(line for line in status.read_text().splitlines() if line.startswith("VmSize:")).split()[1]) * 1024
    monkeypatch.setattr(shutil, "disk_usage", fake_disk(50 * 2**30))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30 if hard == resource.RLIM_INFINITY else min(hard, vm + 2**30), hard))
    try:
        for format in FORMATS:
            with pytest.raises(ValueError, match=r"100000000 images .* need about \d+\.\d GiB of disk but .* has 50\.0 GiB free"):
                generate.samples(str(checkpoint), out=tmp_path / format, num=10**8, format=format)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert list(tmp_path.iterdir()) == []


def test_sigterm_stops_generate_at_a_batch_and_leaves_no_half_file(checkpoint, tmp_path, monkeypatch, capsys):
    import os
    import signal

    real, calls = generate._draw, []

    def draw(*args):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler's preemption would
        return real(*args)

    monkeypatch.setattr(generate, "_draw", draw)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as info:
        main(["generate", "samples", f"--checkpoint={checkpoint}", "--num=400", "--batch_size=20", "--format=pt",
              f"--out={tmp_path / 'out'}"])
    assert info.value.code == 143 and len(calls) <= 3, len(calls)  # of 20 batches
    assert capsys.readouterr().err.strip().endswith("lit-gan: stopped by SIGTERM")
    assert not list((tmp_path / "out").glob("samples.pt*"))  # neither the file nor its .partial
    assert signal.getsignal(signal.SIGTERM) == handler


# --------------------------------------------------------------------------- help, default output, summary
def explained(text: str) -> dict[str, str]:
    """Each option of a help text and its explanation, less jsonargparse's "(type: ...)" note."""
    options: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("  -"):
            current = options.setdefault(line.split()[0].rstrip(","), [])
            signature_and_help = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            current += signature_and_help[1:]
        elif current is not None and line.startswith(" " * 24):
            current.append(line.strip())
        else:
            current = None
    return {name: re.sub(r"\s*\((required, )?type: .*\)$", "", " ".join(words)) for name, words in options.items()}


def help_of(args: list[str], capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as info:
        main(["generate", *args, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_help_names_the_command_and_explains_every_option(capsys, monkeypatch):
    text = help_of([], capsys, monkeypatch)
    assert text.startswith("usage: lit-gan generate {samples,interpolate,arithmetic} ...")
    flat = " ".join(text.split())
    for name, function in generate.COMMANDS.items():
        description = generate.summary(function.__doc__)
        assert description.endswith(".") and len(description.split()) >= 8, description  # a whole sentence
        assert f"{name} {description}" in flat  # listed whole, not cut off
        sub = help_of([name], capsys, monkeypatch)
        assert sub.startswith(f"usage: lit-gan generate [options] {name} --checkpoint CHECKPOINT")
        options = explained(sub)
        parameters = inspect.signature(function).parameters
        assert set(parameters) <= {o.lstrip("-") for o in options}
        for parameter in parameters:
            assert len(options[f"--{parameter}"].split()) >= 3, (name, parameter, options[f"--{parameter}"])


@pytest.fixture
def run_checkpoint(checkpoint, tmp_path) -> Path:
    """The CDCGAN checkpoint as a run keeps it: `<run>/checkpoints/last.ckpt` beside `<run>/config.yaml`."""
    run = tmp_path / "runs" / "mnist-cdcgan"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("{}\n")
    shutil.copy(checkpoint, run / "checkpoints" / "last.ckpt")
    return run / "checkpoints" / "last.ckpt"


def test_by_default_images_go_into_the_run_and_the_summary_says_how_many_and_where(run_checkpoint, capsys):
    run = run_checkpoint.parents[1]
    main(["generate", "samples", f"--checkpoint={run_checkpoint}", "--num=3"])
    folder = run / "generated" / "samples-last"
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png", "000002.png", "grid.png"]
    assert capsys.readouterr().out == f"Wrote 3 images to {folder} (grid: {folder / 'grid.png'})\n"
    main(["generate", "samples", f"--checkpoint={run_checkpoint}", "--num=5", "--format=npz", "--grid=0", f"--out={run / 'npz'}"])
    assert capsys.readouterr().out == f"Wrote 5 images to {run / 'npz' / 'samples.npz'}\n"  # an explicit --out wins
    main(["generate", "interpolate", f"--checkpoint={run_checkpoint}", "--pairs=2", "--steps=3"])
    grid = run / "generated" / "interpolation-last" / "grid.png"
    assert grid.is_file() and capsys.readouterr().out == f"Wrote 6 images (2 pairs x 3 steps) in one grid: {grid}\n"
    main(["generate", "arithmetic", f"--checkpoint={run_checkpoint}", "--a=[0]", "--b=[1]", "--c=[2]", "--num=3"])
    grid = run / "generated" / "arithmetic-last" / "grid.png"
    assert grid.is_file() and capsys.readouterr().out.startswith(f"Wrote 4 images (mean A, mean B, mean C, A - B + C) in one grid: {grid}")


def test_a_checkpoint_outside_a_run_writes_beside_itself(checkpoint, tmp_path):
    loose = tmp_path / "checkpoints" / "model.ckpt"  # a checkpoints/ folder, but no run's config.yaml beside it
    loose.parent.mkdir()
    shutil.copy(checkpoint, loose)
    grid = generate.samples(str(loose), num=2)
    assert grid == tmp_path / "checkpoints" / "generated" / "samples-model" / "grid.png" and grid.is_file()


def test_the_readme_example_draws_only_the_chosen_class(checkpoint, tmp_path):
    """`--labels [7]` as the README spells it (a separate argument): every sample is a 7."""
    main(["generate", "samples", "--checkpoint", str(checkpoint), "--labels", "[7]", "--num", "16", "--format", "npz",
          "--out", str(tmp_path / "sevens")])
    assert np.load(tmp_path / "sevens" / "samples.npz")["labels"].tolist() == [7] * 16
