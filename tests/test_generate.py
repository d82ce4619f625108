"""`lit-gan generate` and fine-tuning from another run's weights."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_gan import generate
from lit_gan.cli import main
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
    same = tiny(CDCGAN, num_classes=10, weights_from=str(checkpoint))
    assert all(torch.equal(v, source[k]) for k, v in same.state_dict().items() if not k.startswith("grid_"))
    # another dataset with 3 channels and 5 classes: what fits is loaded, the rest stays fresh
    other = tiny(CDCGAN, image_shape=(3, 28, 28), num_classes=5, weights_from=str(checkpoint))
    state = other.state_dict()
    assert torch.equal(state["generator.upsample.0.weight"], source["generator.upsample.0.weight"])
    assert state["generator.upsample.3.weight"].shape != source["generator.upsample.3.weight"].shape
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        DCGAN(weights_from="missing.ckpt")


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
    tuned = tiny(CDCGAN, num_classes=10, weights_from=str(source))
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
