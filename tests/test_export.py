"""`lit-gan export`: each format run by its own runtime reproduces lit_gan's `generate`.

Largest absolute differences from `generate` measured on these tiny networks (fp32, CPU, the
tests' inputs): onnxruntime 1.4e-9 (DCGAN), 1.9e-9 (CDCGAN), 2.7e-7 (R3GAN); TorchScript and
safetensors 0 for all three. The tests allow `TOLERANCE` (1e-4).
"""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import lit_gan
from lit_gan import export as exporter
from lit_gan import generate
from lit_gan.cli import main
from lit_gan.export import FILES, SIDECAR, TOLERANCE
from lit_gan.models import CDCGAN, DCGAN, R3GAN
from lit_gan.nets import build
from tests.conftest import LATENT, tiny

MODELS = ("dcgan", "cdcgan", "r3gan")


def _save(model: nn.Module, path: Path, **extra) -> Path:
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), **extra}, path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """An unconditional DCGAN, a CDCGAN trained (so its record says) on EmbeddedMNIST, and a
    conditional R3GAN whose EMA generator differs from its generator."""
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    r3gan = tiny(R3GAN, num_classes=10, conditional=True)
    with torch.no_grad():
        for p in r3gan.generator_ema.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return {
        "dcgan": _save(tiny(DCGAN), folder / "dcgan.ckpt"),
        "cdcgan": _save(tiny(CDCGAN, num_classes=10), folder / "cdcgan.ckpt",
                        data={"class": "EmbeddedMNIST", "args": {"image_size": None, "seed": 0, "val_size": 500}}),
        "r3gan": _save(r3gan, folder / "r3gan.ckpt"),
        "folder": _save(tiny(CDCGAN, num_classes=3), folder / "folder.ckpt", class_names=["cat", "dog", "owl"],
                        data={"class": "ImageFolder", "args": {"root": "pets"}}),
    }


@pytest.fixture(scope="module")
def exports(checkpoints, tmp_path_factory) -> Path:
    """Every model in every format: `<root>/<model>-<format>/`."""
    root = tmp_path_factory.mktemp("exports")
    for name, checkpoint in checkpoints.items():
        for format in FILES:
            written = exporter.export(str(checkpoint), format, out=str(root / f"{name}-{format}"))
            assert written == [root / f"{name}-{format}" / FILES[format], root / f"{name}-{format}" / SIDECAR]
    return root


def inputs(checkpoint: Path, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    """z of `generate samples --seed SEED` and labels cycling backwards through the classes."""
    model = generate.load(checkpoint)
    z = generate._noise(model, n, seed)
    return z, (torch.arange(n).flip(0) % model.num_classes if model.conditional else None)


def reference(checkpoint: Path, z: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
    model = generate.load(checkpoint)
    return generate._draw(model, z, labels).numpy()


@pytest.mark.parametrize("name", MODELS)
def test_onnx_in_onnxruntime_reproduces_generate_at_any_batch_size(exports, checkpoints, name):
    """Max abs difference measured: DCGAN 1.4e-9, CDCGAN 1.9e-9, R3GAN 2.7e-7 (tolerance 1e-4)."""
    session = onnxruntime.InferenceSession(str(exports / f"{name}-onnx" / "generator.onnx"), providers=["CPUExecutionProvider"])
    conditional = name != "dcgan"
    assert [i.name for i in session.get_inputs()] == (["z", "labels"] if conditional else ["z"])
    assert session.get_inputs()[0].shape == ["batch", LATENT] and session.get_outputs()[0].shape == ["batch", 1, 28, 28]
    if conditional:
        assert session.get_inputs()[1].type == "tensor(int64)" and session.get_inputs()[1].shape == ["batch"]
    for n in (5, 2):  # one file, two batch sizes (neither is the batch it was exported with)
        z, labels = inputs(checkpoints[name], n)
        feed = {"z": z.numpy(), **({"labels": labels.numpy()} if conditional else {})}
        (images,) = session.run(None, feed)
        assert images.shape == (n, 1, 28, 28)
        assert np.abs(images - reference(checkpoints[name], z, labels)).max() <= TOLERANCE


def test_the_label_input_chooses_the_class(exports, checkpoints):
    session = onnxruntime.InferenceSession(str(exports / "cdcgan-onnx" / "generator.onnx"), providers=["CPUExecutionProvider"])
    z = inputs(checkpoints["cdcgan"], 1)[0].numpy().repeat(2, 0)
    (images,) = session.run(None, {"z": z, "labels": np.array([3, 7])})
    assert np.abs(images[0] - images[1]).max() > 1e-3  # same z, other class: another image
    assert np.abs(images[1] - reference(checkpoints["cdcgan"], torch.from_numpy(z[:1]), torch.tensor([7]))[0]).max() <= TOLERANCE


LOAD_ALONE = """
import json, sys
import torch
root, names = sys.argv[1], sys.argv[2:]
for name in names:
    generator = torch.jit.load(f"{root}/{name}-torchscript/generator.pt")
    z, labels = torch.load(f"{root}/{name}-inputs.pt", weights_only=True)
    with torch.no_grad():
        torch.save(generator(z) if labels is None else generator(z, labels), f"{root}/{name}-images.pt")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "lit_gan")))
"""


@pytest.mark.integration  # end-to-end: a fresh Python process with torch alone
def test_torchscript_loads_and_runs_with_torch_alone(exports, checkpoints):
    """One subprocess for the three files: `import torch` and `torch.jit.load` only, lit_gan is
    never imported there. Max abs difference measured: 0 for all three (tolerance 1e-4)."""
    for name in MODELS:
        torch.save(inputs(checkpoints[name], 3), exports / f"{name}-inputs.pt")
    done = subprocess.run([sys.executable, "-c", LOAD_ALONE, str(exports), *MODELS], cwd=exports,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []  # no lit_gan module was loaded
    for name in MODELS:
        z, labels = inputs(checkpoints[name], 3)
        images = torch.load(exports / f"{name}-images.pt", weights_only=True).numpy()
        assert np.abs(images - reference(checkpoints[name], z, labels)).max() <= TOLERANCE


@pytest.mark.parametrize("name", MODELS)
def test_safetensors_load_into_a_fresh_network(exports, checkpoints, name):
    """The sidecar's `network` builds the class; the weights load strictly. Max abs difference
    measured: 0 (tolerance 1e-4); R3GAN's are the EMA weights, not G's."""
    info = json.loads((exports / f"{name}-safetensors" / SIDECAR).read_text())
    net, args = info["network"], info["network"]["args"]
    generator = build(net, tuple(args["image_shape"]), args["latent_dim"], args["num_classes"]).eval()
    generator.load_state_dict(load_file(exports / f"{name}-safetensors" / "generator.safetensors"), strict=True)
    z, labels = inputs(checkpoints[name], 4)
    with torch.no_grad():
        images = generator(z, labels).numpy()
    assert np.abs(images - reference(checkpoints[name], z, labels)).max() <= TOLERANCE
    if name == "r3gan":  # generate uses the EMA generator outside training, and so does the export
        model = generate.load(checkpoints[name])
        with torch.no_grad():
            assert np.abs(images - model.generator(z, labels).numpy()).max() > 1e-3


def test_the_sidecar_says_how_to_feed_the_generator(exports, checkpoints):
    cdcgan = json.loads((exports / "cdcgan-onnx" / SIDECAR).read_text())
    assert cdcgan["format"] == "onnx" and cdcgan["file"] == "generator.onnx" and cdcgan["opset"] == exporter.OPSET
    assert cdcgan["inputs"] == [{"name": "z", "dtype": "float32", "shape": ["batch", LATENT]},
                                {"name": "labels", "dtype": "int64", "shape": ["batch"], "values": "0..9"}]
    assert cdcgan["outputs"] == [{"name": "images", "dtype": "float32", "shape": ["batch", 1, 28, 28]}]
    assert cdcgan["latent_dim"] == LATENT and cdcgan["noise"] == {"distribution": "normal", "mean": 0.0, "std": 1.0}
    assert cdcgan["num_classes"] == 10 and cdcgan["class_names"] == [str(d) for d in range(10)]
    assert cdcgan["image_shape"] == [1, 28, 28] and cdcgan["value_range"] == [-1.0, 1.0] and cdcgan["ema"] is False
    assert cdcgan["network"]["class_path"] == "lit_gan.nets.dcgan.DCGANGenerator"
    assert cdcgan["lit_gan_version"] == lit_gan.__version__
    assert cdcgan["checkpoint"] == {"file": "cdcgan.ckpt", "sha256": hashlib.sha256(checkpoints["cdcgan"].read_bytes()).hexdigest()}
    dcgan = json.loads((exports / "dcgan-torchscript" / SIDECAR).read_text())
    assert dcgan["format"] == "torchscript" and dcgan["file"] == "generator.pt" and "opset" not in dcgan
    assert [i["name"] for i in dcgan["inputs"]] == ["z"] and dcgan["num_classes"] == 0 and dcgan["class_names"] is None
    r3gan = json.loads((exports / "r3gan-safetensors" / SIDECAR).read_text())
    assert r3gan["ema"] is True and r3gan["num_classes"] == 10
    assert r3gan["class_names"] is None  # the checkpoint records no data: names unknown, not guessed


def test_class_names_of_the_built_in_datasets():
    assert exporter.class_names({"class": "CIFAR10", "args": {"classes": ["cat", "dog"]}}, 2) == ["cat", "dog"]
    assert exporter.class_names({"class": "FashionMNIST", "args": {}}, 10)[0] == "T-shirt/top"
    assert exporter.class_names({"class": "ImageFolder", "args": {}}, 3) is None
    assert exporter.class_names({"class": "MNIST", "args": {}}, 3) is None  # a count that does not match


def test_a_non_empty_out_is_refused_unless_overwrite(checkpoints, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["export", f"--checkpoint={checkpoints['dcgan']}", "--format=safetensors", f"--out={out}"]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert capsys.readouterr().err == f"lit-gan: error: {out} is not empty; choose another --out or pass --overwrite true\n"
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (out / "generator.onnx").write_bytes(b"an earlier export in another format")
    main([*args, "--overwrite=true"])
    assert sorted(p.name for p in out.iterdir()) == ["generator.json", "generator.safetensors", "notes.txt"]
    printed = capsys.readouterr().out
    assert printed.startswith(f"Wrote {out / 'generator.safetensors'} and generator.json (DCGANGenerator; inputs z (batch, {LATENT})")


def test_by_default_the_export_goes_into_the_run(checkpoints, tmp_path):
    run = tmp_path / "runs" / "r"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("{}\n")
    checkpoint = run / "checkpoints" / "last.ckpt"
    checkpoint.write_bytes(checkpoints["dcgan"].read_bytes())
    path, _ = exporter.export(str(checkpoint), "safetensors")
    assert path == run / "exported" / "safetensors-last" / "generator.safetensors"


def test_an_exporter_failure_is_refused_in_one_line_naming_the_network(checkpoints, tmp_path, capsys, monkeypatch):
    def unsupported(*args, **kwargs):
        raise torch.onnx.errors.OnnxExporterError("Exporting the operator 'aten::frobnicate' to ONNX opset version 17 "
                                                  "is not supported.\nPlease feel free to request support.")

    monkeypatch.setattr(torch.onnx, "export", unsupported)
    with pytest.raises(SystemExit) as info:
        main(["export", f"--checkpoint={checkpoints['cdcgan']}", "--format=onnx", f"--out={tmp_path / 'o'}"])
    assert info.value.code == 2
    assert capsys.readouterr().err == ("lit-gan: error: DCGANGenerator cannot be exported to ONNX (opset 17): Exporting the "
                                       "operator 'aten::frobnicate' to ONNX opset version 17 is not supported\n")
    assert not (tmp_path / "o").exists()  # no graph, no sidecar, no folder


class NumpyGenerator(nn.Module):
    """A generator that leaves torch (through numpy) in forward: no graph can hold it."""

    def __init__(self, image_shape, latent_dim, num_classes=0, width=8) -> None:
        super().__init__()
        self.shape, self.linear = tuple(image_shape), nn.Linear(latent_dim, int(np.prod(image_shape)))

    def forward(self, z, labels=None):
        return torch.from_numpy(np.tanh(self.linear(z).detach().numpy())).view(-1, *self.shape)


def test_a_network_no_graph_can_hold_is_refused_by_name(tmp_path):
    spec = {"class_path": f"{__name__}.NumpyGenerator", "init_args": {}}
    checkpoint = _save(tiny(DCGAN, generator=spec), tmp_path / "numpy.ckpt")
    with pytest.raises(ValueError, match=r"^NumpyGenerator cannot be exported as a graph for any batch size \(trace: .*; script: .*\)$"):
        exporter.export(str(checkpoint), "torchscript", out=str(tmp_path / "t"), allow=[spec["class_path"]])
    assert not (tmp_path / "t").exists()


def test_a_missing_package_says_what_to_install(checkpoints, tmp_path, monkeypatch):
    find_spec = exporter.importlib.util.find_spec
    monkeypatch.setattr(exporter.importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else find_spec(name, *a))
    with pytest.raises(ValueError, match=r'^--format onnx needs the onnx package: pip install -e "\.\[export\]"'):
        exporter.export(str(checkpoints["dcgan"]), "onnx", out=str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_an_image_folders_class_names_come_from_the_checkpoint(checkpoints, tmp_path):
    """The names a fit saves from its data (here an ImageFolder's, which no table knows)."""
    exporter.export(str(checkpoints["folder"]), "safetensors", out=str(tmp_path / "out"))
    assert json.loads((tmp_path / "out" / SIDECAR).read_text())["class_names"] == ["cat", "dog", "owl"]


def test_a_fit_saves_its_datas_class_names(tmp_path, labeled_image_folder):
    from types import SimpleNamespace

    from lit_gan.data import ImageFolder

    data = ImageFolder(root=str(labeled_image_folder), image_size=8, batch_size=2, num_workers=0)
    data.setup("fit")
    model, checkpoint = tiny(CDCGAN, num_classes=2, image_shape=(3, 8, 8)), {"state_dict": {}}
    model._trainer = SimpleNamespace(datamodule=data)
    model.on_save_checkpoint(checkpoint)
    assert checkpoint["class_names"] == ["a", "b"]
