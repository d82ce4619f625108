"""`lit-gan export`: a checkpoint's generator for programs without lit_gan.

    lit-gan export --checkpoint runs/<run>/checkpoints/last.ckpt --format onnx --out exported

The generator only (the EMA weights when the model keeps an EMA, as `generate` uses), in eval
mode and fp32, as one graph `images = G(z[, labels])`: ONNX with a free batch axis, TorchScript for
`torch.jit.load`, or a safetensors state dict of the network. Beside it, `generator.json` says
how to feed it: latent size and noise, classes, image shape and value range, the lit_gan version
and the source checkpoint's sha256.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any, Callable, Literal

import torch
from torch import Tensor, nn

import lit_gan
from lit_gan.generate import beside_run, load, summary
from lit_gan.models import Generative

Format = Literal["onnx", "torchscript", "safetensors"]
FILES = {"onnx": "generator.onnx", "torchscript": "generator.pt", "safetensors": "generator.safetensors"}
SIDECAR = "generator.json"
NEEDS = {"onnx": "onnx", "safetensors": "safetensors"}
"""The optional package each format needs (the `export` extra)."""
OPSET = 17
TOLERANCE = 1e-4
"""Largest absolute difference from lit_gan's own images that an exported graph may show (fp32)."""


class Conditional(nn.Module):
    """images = G(z, labels): z float (N, latent), labels int64 (N,)."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return self.generator(z, labels)


class Unconditional(nn.Module):
    """images = G(z): z float (N, latent)."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z, None)


def network(model: Generative) -> nn.Module:
    """The generator `generate` draws with outside training: the EMA one when there is one."""
    ema = getattr(model, "generator_ema", None)
    return ema if ema is not None else model.generator  # type: ignore[attr-defined]


def wrapped(model: Generative) -> nn.Module:
    """A copy of the generator in fp32 and eval mode, behind `forward(z[, labels]) -> images`."""
    generator = copy.deepcopy(network(model)).float().eval().requires_grad_(False)
    return (Conditional if model.conditional else Unconditional)(generator).eval()


def example(model: Generative, n: int) -> tuple[Tensor, ...]:
    """Inputs for a batch of `n`: seeded z (and labels 0, 1, ... cycling through the classes)."""
    z = model.sample_z(n, torch.Generator().manual_seed(n)).float().cpu()
    return (z, torch.arange(n) % model.num_classes) if model.conditional else (z,)


def _first_line(error: BaseException) -> str:
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return text[:300]


def _trace(module: nn.Module, inputs: tuple[Tensor, ...]) -> torch.jit.ScriptModule:
    return torch.jit.trace(module, inputs, check_trace=False)


def _script(module: nn.Module, inputs: tuple[Tensor, ...]) -> torch.jit.ScriptModule:
    return torch.jit.script(module)


def graph(module: nn.Module, model: Generative, name: str) -> torch.jit.ScriptModule:
    """`module` as TorchScript that takes any batch size: traced, or scripted when the trace fixed
    the batch size (a `len(z)` in forward does); each checked against eager mode at batch sizes
    it was not traced with. ValueError naming the network when neither works."""
    problems = []
    for how in (_trace, _script):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TorchScript's deprecation and tracer warnings: checked below
                compiled = how(module, example(model, 2))
                for n in (1, 3):
                    inputs = example(model, n)
                    with torch.no_grad():
                        difference = (compiled(*inputs) - module(*inputs)).abs().max().item()
                    if not difference <= TOLERANCE:
                        raise ValueError(f"at batch size {n} it differs from eager mode by {difference:.2g}")
            return compiled
        except Exception as error:  # noqa: BLE001 (any failure to compile or run refuses this way, with its reason)
            problems.append(f"{how.__name__.strip('_')}: {_first_line(error)}")
    raise ValueError(f"{name} cannot be exported as a graph for any batch size ({'; '.join(problems)})")


def _onnx(compiled: torch.jit.ScriptModule, model: Generative, path: Path, name: str) -> None:
    names = ["z", "labels"] if model.conditional else ["z"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(compiled, example(model, 2), str(path), dynamo=False, input_names=names,
                              output_names=["images"], opset_version=OPSET,
                              dynamic_axes={n: {0: "batch"} for n in (*names, "images")})
    except (RuntimeError, TypeError, ValueError) as error:
        raise ValueError(f"{name} cannot be exported to ONNX (opset {OPSET}): {_first_line(error)}") from None


def _torchscript(compiled: torch.jit.ScriptModule, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
        torch.jit.save(compiled, str(path))


def _safetensors(module: nn.Module, path: Path, name: str) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in module.generator.state_dict().items()}
    try:
        save_file(state, str(path), metadata={"format": "pt"})
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"{name} cannot be saved as safetensors: {_first_line(error)}") from None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recorded_names(checkpoint: dict[str, Any], num_classes: int) -> list[str] | None:
    """The class names the checkpoint keeps (`class_names`, saved from the data since lit_gan 0.1.x),
    else those of a built-in dataset it names; None when unknown or not `num_classes` long."""
    names = checkpoint.get("class_names")
    if isinstance(names, list) and num_classes and len(names) == num_classes:
        return [str(n) for n in names]
    return class_names(checkpoint.get("data"), num_classes)


def class_names(data: Any, num_classes: int) -> list[str] | None:
    """The class names of lit_gan's built-in datasets, from what a checkpoint records of its data
    (`checkpoint["data"]`: class and identity arguments); None when unknown (an image folder's
    names live in its files) or when they do not match `num_classes`."""
    from torchvision.datasets import FashionMNIST

    from lit_gan.data import CIFAR10_CLASSES
    from lit_gan.data.mnist import DIGITS

    if not isinstance(data, dict) or not num_classes:
        return None
    args = data.get("args") if isinstance(data.get("args"), dict) else {}
    known: dict[str, Callable[[], list[str]]] = {
        "MNIST": lambda: DIGITS,
        "EmbeddedMNIST": lambda: DIGITS,
        "FashionMNIST": lambda: FashionMNIST.classes,
        "CIFAR10": lambda: args.get("classes") or CIFAR10_CLASSES,
        "StackedMNIST": lambda: [f"{m:03d}" for m in range(1000)],
    }
    names = known[data["class"]]() if data.get("class") in known else None
    return [str(n) for n in names] if names is not None and len(names) == num_classes else None


def sidecar(model: Generative, checkpoint: Path, format: str, file: str) -> dict[str, Any]:
    """What a program needs to feed the exported generator, and where it came from."""
    from lit_gan.checkpoint_io import read_checkpoint

    c, h, w = (int(s) for s in model.hparams.image_shape)
    d, k = int(model.latent_dim), model.num_classes if model.conditional else 0
    noise = {"distribution": "normal", "mean": 0.0, "std": 1.0} if model.noise == "normal" else \
        {"distribution": "uniform", "low": -1.0, "high": 1.0}
    inputs = [{"name": "z", "dtype": "float32", "shape": ["batch", d]}]
    if k:
        inputs.append({"name": "labels", "dtype": "int64", "shape": ["batch"], "values": f"0..{k - 1}"})
    spec = model.hparams.generator
    return {
        "format": format,
        "file": file,
        "inputs": inputs,
        "outputs": [{"name": "images", "dtype": "float32", "shape": ["batch", c, h, w]}],
        "latent_dim": d,
        "noise": noise,
        "num_classes": k,
        "class_names": recorded_names(read_checkpoint(checkpoint, mmap=True), k),
        "image_shape": [c, h, w],
        "value_range": [float(v) for v in model.value_range],
        "ema": getattr(model, "generator_ema", None) is not None,
        "network": {"class_path": spec["class_path"], "init_args": spec["init_args"],
                    "args": {"image_shape": [c, h, w], "latent_dim": d, "num_classes": k}},
        **({"opset": OPSET} if format == "onnx" else {}),
        "lit_gan_version": lit_gan.__version__,
        "checkpoint": {"file": checkpoint.name, "sha256": sha256(checkpoint)},
    }


def _out_dir(out: Path, overwrite: bool) -> Path:
    """`out`, created; a non-empty one only with `overwrite`, then without an earlier export's files."""
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; choose another --out or pass --overwrite true")
        for name in (*FILES.values(), SIDECAR):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def export(
    checkpoint: str, format: Format, out: str | None = None, overwrite: bool = False, allow: list[str] | None = None,
) -> list[Path]:
    """Export the generator of a checkpoint (its EMA when there is one) with a JSON sidecar.

    Args:
        checkpoint: a lit_gan checkpoint, e.g. runs/<run>/checkpoints/last.ckpt.
        format: onnx (a graph for onnxruntime, any batch size), torchscript (for torch.jit.load,
            no lit_gan needed) or safetensors (the network's weights).
        out: the folder to write into; default: <run>/exported/<format>-<checkpoint name> for a
            checkpoint in a run, else exported/<format>-<checkpoint name> beside the checkpoint.
        overwrite: write into a non-empty --out (an earlier export's files there are replaced).
        allow: your own network classes the checkpoint may name, e.g. [my.nets.Generator].
    """
    if format not in FILES:
        raise ValueError(f"--format must be one of {', '.join(FILES)}, got {format!r}")
    needed = NEEDS.get(format)
    if needed and importlib.util.find_spec(needed) is None:
        raise ValueError(f"--format {format} needs the {needed} package: pip install -e \".[export]\" "
                         f"in the lit_gan folder (or pip install {needed})")
    source = Path(checkpoint)
    model = load(source, "cpu", allow)
    module = wrapped(model)
    name = type(module.generator).__name__
    folder = Path(out) if out else beside_run(source, "exported", format)
    new = not folder.exists()
    path, info = _out_dir(folder, overwrite) / FILES[format], folder / SIDECAR
    try:
        if format == "safetensors":
            _safetensors(module, path, name)
        elif format == "onnx":
            _onnx(graph(module, model, name), model, path, name)
        else:
            _torchscript(graph(module, model, name), path)
        info.write_text(json.dumps(sidecar(model, source, format, path.name), indent=2) + "\n")
    except BaseException:  # a refusal (or Ctrl-C) leaves no half export behind
        path.unlink(missing_ok=True)
        info.unlink(missing_ok=True)
        if new:
            folder.rmdir()
        raise
    return [path, info]


def main(args: list[str] | None = None) -> None:
    from jsonargparse import ArgumentParser

    from lit_gan.cli import shown

    parser = ArgumentParser(prog="lit-gan export", exit_on_error=False, description=summary(export.__doc__))
    parser.add_function_arguments(export, as_group=False)
    config = parser.parse_args(args)
    path, info = export(**config.as_dict())
    details = json.loads(info.read_text())
    inputs = ", ".join(f"{i['name']} {tuple(i['shape'])}".replace("'", "") for i in details["inputs"])
    print(f"Wrote {shown(path)} and {info.name} ({details['network']['class_path'].rsplit('.', 1)[-1]}"
          f"{', EMA weights' if details['ema'] else ''}; inputs {inputs}; images in {details['value_range']})")
