"""`lit-gan generate`: images for chosen labels, latent interpolations and latent arithmetic
from any lit_gan checkpoint. Seeded: the same command gives the same images, and sample i of a
seed is the same image whatever `--num` and `--batch_size` (a longer run extends a shorter one).

    lit-gan generate samples     --checkpoint last.ckpt --labels [7] --num 16 --out sevens
    lit-gan generate interpolate --checkpoint last.ckpt --pairs 4 --steps 10
    lit-gan generate arithmetic  --checkpoint last.ckpt --a [3,17] --b [5] --c [40,41]

Without `--out`, a command writes into the checkpoint's run (`<run>/generated/samples-last` for
`<run>/checkpoints/last.ckpt`), and says how many images it wrote and where.

`samples` streams: it draws, converts and writes one batch at a time (PNGs as they come, or into
one `.pt` / `.npz` file filled in place), so memory stays that of one batch for any `--num`, and
it refuses up front a `--num` whose files the disk cannot hold.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import Tensor

from lit_gan.folders import run_of
from lit_gan.images import save_grid, to_uint8
from lit_gan.models import GAN, Generative
from lit_gan.progress import bar

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser


def load(checkpoint: str | Path, device: str = "cpu", allow: list[str] | None = None) -> Generative:
    """Any variant's checkpoint, of this version or an earlier one (read with weights_only=True).
    It may name lit_gan's networks, or your own ones listed in `allow` (`--allow [my.nets.G]`)."""
    return GAN.load_from_checkpoint(checkpoint, map_location=device, allowed=allow or ()).eval()


def beside_run(checkpoint: str | Path, folder: str, what: str) -> Path:
    """Where a command writes when no --out is given: `<run>/<folder>/<what>-<stem>` for a
    checkpoint in a run (`<run>/checkpoints/<stem>.ckpt`), else `<folder>/<what>-<stem>` beside it."""
    path = Path(checkpoint)
    return (run_of(path) or path.parent) / folder / f"{what}-{path.stem}"


OUTPUTS = ("grid.png", "samples.pt", "samples.npz", "samples.pt.partial", "samples.npz.partial")
"""The single files `generate` writes (besides the numbered PNGs); `.partial`: one being written."""


def _stale(out: Path, overwrite: bool) -> list[Path]:
    """The images an earlier `generate` wrote in `out`, to remove; a non-empty `out` only with
    `overwrite` (FileExistsError otherwise). Touches nothing."""
    if not (out.exists() and any(out.iterdir())):
        return []
    if not overwrite:
        raise FileExistsError(f"{out} is not empty; choose another --out or pass --overwrite true")
    return [*out.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"), *(p for p in (out / n for n in OUTPUTS) if p.is_file())]


def _clear(out: Path, stale: list[Path]) -> Path:
    for old in stale:
        old.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _out_dir(out: str | Path, overwrite: bool) -> Path:
    """`out`, created; a non-empty one only with `overwrite`, and then emptied of the images an
    earlier `generate` wrote there (other files are left alone), so no stale image stays behind."""
    out = Path(out)
    return _clear(out, _stale(out, overwrite))


def _count(name: str, n: int) -> int:
    if n < 1:
        raise ValueError(f"--{name} must be at least 1, got {n}")
    return n


def _one_label(model: Generative, label: int | None) -> list[int] | None:
    """A conditional model draws `label` (class 0 by default); an unconditional one takes none."""
    if label is None:
        return [0] if model.conditional else None
    return [label]


def _chosen(model: Generative, labels: list[int] | None) -> Tensor | None:
    """The labels to cycle through (all classes by default), checked; None for an unconditional model."""
    k = model.num_classes
    if not model.conditional:
        if labels:
            raise ValueError("this model is not conditional: it cannot draw chosen labels; leave --labels out")
        return None
    chosen = torch.tensor(labels if labels else list(range(k)))
    if chosen.min() < 0 or chosen.max() >= k:
        raise ValueError(f"labels must lie in 0..{k - 1} for this model, got {labels}")
    return chosen


def _cycle(chosen: Tensor, start: int, n: int) -> Tensor:
    """The labels of samples start..start+n-1: `chosen` repeated (int64)."""
    return chosen[torch.arange(start, start + n) % len(chosen)]


def _labels(model: Generative, labels: list[int] | None, n: int) -> Tensor | None:
    chosen = _chosen(model, labels)
    return None if chosen is None else _cycle(chosen, 0, n)


class _Noise:
    """The latent vectors of one seed, in order, `take(n)` at a time: z of sample i is the same
    whatever the number of samples and however they are batched.

    It is one `torch.Generator` stream drawn with `model.sample_z`, always in whole multiples of
    16 numbers. That matters for normal noise: torch's CPU `randn` of 16 numbers or more fills
    them with uniforms and turns each block of 16 into normals (Box-Muller), but draws a fresh 16
    for a last, incomplete block. Drawn in multiples of 16, consecutive draws are one stream: what
    one `sample_z(num)` gives whenever num * latent_dim is a multiple of 16 (latent 16, 32, 64,
    128: always; latent 100: num a multiple of 4), and otherwise the same but for its last 16
    numbers, which the old one-draw scheme redrew and so changed with `--num`. Uniform noise
    takes one number per value and was never affected."""

    def __init__(self, model: Generative, seed: int) -> None:
        self.model, self.generator = model, torch.Generator().manual_seed(seed)
        self.rows = 16 // math.gcd(16, int(model.latent_dim))  # rows of z per 16 numbers
        self.left: Tensor | None = None  # drawn, not yet taken (fewer than `rows` rows)

    def take(self, n: int) -> Tensor:
        have = 0 if self.left is None else len(self.left)
        if n > have:
            fresh = self.model.sample_z(-(-(n - have) // self.rows) * self.rows, self.generator)
            self.left = fresh if self.left is None else torch.cat([self.left, fresh])
        assert self.left is not None
        z, self.left = self.left[:n], self.left[n:].clone()
        return z


def _noise(model: Generative, n: int, seed: int) -> Tensor:
    """The first `n` latent vectors of `seed` (those of `generate samples --seed SEED`)."""
    return _Noise(model, seed).take(n)


@torch.no_grad()
def _draw(model: Generative, z: Tensor, labels: Tensor | None) -> Tensor:
    """Images for `z` (from `model.sample_z`, so on the model's device) and `labels`."""
    return model.generate(z=z, labels=None if labels is None else labels.to(z.device))


FORMATS = ("png", "pt", "npz")
BLOCK = 4096
"""Disk space is taken in blocks: every PNG needs at least one (4 KiB on common filesystems)."""


def _png_bytes(c: int, h: int, w: int) -> int:
    """A generous size on disk for one PNG of C x H x W uint8 pixels: the raw pixels (PNG never
    needs much more, even for noise), a filter byte a row, chunk and zlib headers, whole blocks."""
    return -(-(c * h * w + h + 1024) // BLOCK) * BLOCK


def _space_needed(shape: tuple[int, int, int], num: int, labeled: bool, format: str, grid: int, nrow: int) -> int:
    """Bytes of disk `samples` may take, at most: uint8 pixels (+ int64 labels) and headers for
    pt / npz (npz compresses, but noise would not shrink), one `_png_bytes` a PNG, and the grid."""
    c, h, w = shape
    if format == "png":
        need = num * _png_bytes(c, h, w)
    else:
        raw = num * (c * h * w + (8 if labeled else 0))
        need = raw + raw // 1000 + 2**16  # deflate's worst case (stored blocks) adds < 0.01 %; headers
    if grid:
        shown = min(grid, num)
        cols = min(nrow, shown)
        need += _png_bytes(c, -(-shown // cols) * (h + 2) + 2, cols * (w + 2) + 2)
    return need


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def _check_space(out: Path, need: int, freed: int, what: str) -> None:
    """ValueError, before anything is drawn or written, when `out`'s disk cannot hold `need` bytes
    (with `freed` bytes of earlier outputs that `--overwrite` removes)."""
    place = out.absolute()
    while not place.exists():
        place = place.parent
    free = shutil.disk_usage(place).free + freed
    if need > free:
        raise ValueError(
            f"{what} need about {_size(need)} of disk but {place} has {_size(free)} free: "
            f"ask for fewer (a smaller --num) or write them to a disk with more room (another --out)"
        )


class _Pngs:
    """`folder/000000.png ...`, one file per image, written as the batches come."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, start: int, pixels: Tensor, labels: Tensor | None) -> None:
        for i, image in enumerate(pixels, start):
            save_grid(image[None].float() / 255, self.folder / f"{i:06d}.png", nrow=1, value_range=(0.0, 1.0))

    def close(self, ok: bool) -> Path | None:
        return None


class _TensorFile:
    """`samples.pt` for `torch.load`, filled batch by batch in bounded memory: `torch.save` writes
    the file with the storage bytes skipped (`torch.serialization.skip_data`; the placeholder
    tensors it pickles map a sparse temporary file, so nothing is allocated), then each batch's
    bytes go in place, and the zip entries get their CRC-32. Written as `samples.pt.partial`,
    renamed when complete."""

    def __init__(self, path: Path, shape: tuple[int, ...], labeled: bool) -> None:
        self.path, self.partial = path, path.with_name(path.name + ".partial")
        n, item = shape[0], math.prod(shape[1:])
        with tempfile.TemporaryFile(dir=path.parent) as hole:
            hole.truncate(max(n * item, n * 8 if labeled else 0))  # sparse: no disk, no memory
            images = torch.from_numpy(np.memmap(hole, np.uint8, "r+", shape=shape))
            labels = torch.from_numpy(np.memmap(hole, np.int64, "r+", shape=(n,))) if labeled else None
            with torch.serialization.skip_data():
                torch.save({"images": images, "labels": labels}, self.partial)
            del images, labels
        self.file = open(self.partial, "r+b")  # noqa: SIM115 (closed in close)
        with zipfile.ZipFile(self.file) as archive:
            self.entries = archive.infolist()
            self.central = archive.start_dir
        data = {info.filename.rsplit("/data/", 1)[1]: info for info in self.entries if "/data/" in info.filename}
        self.images, self.labels = data["0"], data.get("1")  # pickled in this order: images, labels
        if self.images.file_size != n * item or (labeled and (self.labels is None or self.labels.file_size != n * 8)):
            raise RuntimeError(f"unexpected layout of {self.partial}: {[(i.filename, i.file_size) for i in self.entries]}")
        self.item, self.crc = item, {}
        self.offset = {info.filename: self._data_offset(info) for info in (self.images, self.labels) if info is not None}

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        self.file.seek(info.header_offset)
        local = self.file.read(30)
        if local[:4] != b"PK\x03\x04":
            raise RuntimeError(f"no zip entry {info.filename} at {info.header_offset} of {self.partial}")
        name, extra = struct.unpack("<HH", local[26:30])
        return info.header_offset + 30 + name + extra

    def _put(self, info: zipfile.ZipInfo, at: int, values: Tensor) -> None:
        data = memoryview(values.contiguous().numpy()).cast("B")
        self.file.seek(self.offset[info.filename] + at)
        self.file.write(data)
        self.crc[info.filename] = zlib.crc32(data, self.crc.get(info.filename, 0))

    def write(self, start: int, pixels: Tensor, labels: Tensor | None) -> None:
        self._put(self.images, start * self.item, pixels)
        if self.labels is not None and labels is not None:
            self._put(self.labels, start * 8, labels.to(torch.int64))

    def _set_crcs(self) -> None:
        """The CRC-32 of each filled entry, where zip readers look: the data descriptor after the
        data (torch's writer sets flag bit 3) or the local header, and the central directory."""
        for info in self.entries:
            if info.filename not in self.crc:
                continue
            if info.flag_bits & 0x08:
                self.file.seek(self.offset[info.filename] + info.compress_size)
                at = self.file.tell() + (4 if self.file.read(4) == b"PK\x07\x08" else 0)
            else:
                at = info.header_offset + 14
            self.file.seek(at)
            self.file.write(struct.pack("<I", self.crc[info.filename]))
        at = self.central
        for info in self.entries:
            self.file.seek(at)
            head = self.file.read(46)
            if head[:4] != b"PK\x01\x02":
                raise RuntimeError(f"no central directory entry at {at} of {self.partial}")
            if info.filename in self.crc:
                self.file.seek(at + 16)
                self.file.write(struct.pack("<I", self.crc[info.filename]))
            at += 46 + sum(struct.unpack("<HHH", head[28:34]))

    def close(self, ok: bool) -> Path | None:
        try:
            if ok:
                self._set_crcs()
        finally:
            self.file.close()
        if not ok:
            self.partial.unlink(missing_ok=True)
            return None
        os.replace(self.partial, self.path)
        return self.path


class _ArrayFile:
    """`samples.npz` for `np.load` (arrays `images` and, for a conditional model, `labels`), as
    `np.savez_compressed` writes it, but streamed: each batch is deflated into the zip entry
    `images.npy` as it comes, then `labels.npy` follows, `batch_size` at a time (labels only
    cycle, so they need no keeping). Written as `samples.npz.partial`, renamed when complete."""

    def __init__(self, path: Path, shape: tuple[int, ...], chosen: Tensor | None, batch_size: int) -> None:
        self.path, self.partial, self.num, self.chosen = path, path.with_name(path.name + ".partial"), shape[0], chosen
        self.batch_size = batch_size
        self.archive = zipfile.ZipFile(self.partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self.entry = self._open("images", np.uint8, shape)

    def _open(self, key: str, dtype: type, shape: tuple[int, ...]):  # noqa: ANN202 (a zipfile entry)
        entry = self.archive.open(f"{key}.npy", "w", force_zip64=True)  # as np.savez does
        header = np.lib.format.header_data_from_array_1_0(np.empty((0,), dtype))
        np.lib.format.write_array_header_1_0(entry, {**header, "shape": shape})
        return entry

    def write(self, start: int, pixels: Tensor, labels: Tensor | None) -> None:
        self.entry.write(memoryview(pixels.contiguous().numpy()).cast("B"))

    def close(self, ok: bool) -> Path | None:
        try:
            self.entry.close()
            if ok and self.chosen is not None:
                with self._open("labels", np.int64, (self.num,)) as entry:
                    for start in range(0, self.num, self.batch_size):
                        labels = _cycle(self.chosen, start, min(self.batch_size, self.num - start))
                        entry.write(memoryview(labels.numpy()).cast("B"))
        finally:
            self.archive.close()
        if not ok:
            self.partial.unlink(missing_ok=True)
            return None
        os.replace(self.partial, self.path)
        return self.path


def samples(
    checkpoint: str, out: str | None = None, num: int = 64, labels: list[int] | None = None,
    seed: int = 0, nrow: int = 8, grid: int = 64, format: str = "png", overwrite: bool = False,
    device: str = "cpu", batch_size: int = 500, allow: list[str] | None = None,
) -> Path:
    """Draw images, for chosen classes of a conditional model, as PNGs or one .pt/.npz file.

    `format` png writes `out/000000.png ...`; pt / npz write one file, `out/samples.pt` (uint8
    images (N, C, H, W) and labels, for `torch.load`) or `out/samples.npz` (numpy arrays `images`
    and `labels`), for external metrics. `out/grid.png` shows the first `grid` images (0: no grid).
    Drawn and written `batch_size` images at a time (memory: one batch, whatever `num`); sample i
    is the same image for any `num` and `batch_size`. Refuses, before drawing, a `num` whose files
    would not fit on `out`'s disk. Returns the grid (png) or the file written (pt, npz).

    Args:
        checkpoint: a lit_gan checkpoint, e.g. runs/<run>/checkpoints/last.ckpt.
        out: the folder to write into; default: <run>/generated/samples-<checkpoint name> for a
            checkpoint in a run's checkpoints/ folder, else generated/samples-<name> beside it.
        num: how many images to draw.
        labels: the classes to draw, in turn (conditional models), e.g. [7] or [3,5]; default: all.
        seed: seed of the noise: the same seed draws the same images.
        nrow: images per row of grid.png.
        grid: how many of the first images grid.png shows (0: no grid).
        format: png (one file per image), pt (samples.pt for torch.load) or npz (samples.npz for np.load).
        overwrite: write into a non-empty --out (images an earlier generate wrote there are removed).
        device: where the generator runs: cpu, cuda, cuda:1, ...
        batch_size: images drawn and written at a time (memory holds one batch).
        allow: your own network classes the checkpoint may name, e.g. [my.nets.Generator].
    """
    num, batch_size = _count("num", num), _count("batch_size", batch_size)
    if format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if grid < 0:
        raise ValueError(f"--grid is a number of images (0: no grid), got {grid}")
    model, target = load(checkpoint, device, allow), Path(out or beside_run(checkpoint, "generated", "samples"))
    chosen = _chosen(model, labels)
    shape = (num, *(int(s) for s in model.hparams.image_shape))
    stale = _stale(target, overwrite)
    freed = sum(getattr(st, "st_blocks", 0) * 512 or st.st_size for st in (p.stat() for p in stale))
    need = _space_needed(shape[1:], num, chosen is not None, format, grid, nrow)
    _check_space(target, need, freed, f"{num} images ({'x'.join(map(str, shape[1:]))}) as {format}")
    folder = _clear(target, stale)
    sink: _Pngs | _TensorFile | _ArrayFile
    if format == "png":
        sink = _Pngs(folder)
    elif format == "pt":
        sink = _TensorFile(folder / "samples.pt", shape, chosen is not None)
    else:
        sink = _ArrayFile(folder / "samples.npz", shape, chosen, batch_size)
    noise, shown, kept, ok = _Noise(model, seed), [], 0, False  # shown: the grid's images, kept of them
    try:
        for start in bar(range(0, num, batch_size), desc="generating", unit="batch", enabled=num > batch_size):
            n = min(batch_size, num - start)
            y = None if chosen is None else _cycle(chosen, start, n)
            images = _draw(model, noise.take(n), y)
            if kept < grid:
                shown.append(images[: grid - kept].clone())
                kept += len(shown[-1])
            sink.write(start, to_uint8(images, model.value_range), y)
            del images
        ok = True
    finally:
        written = sink.close(ok)
    if grid:
        save_grid(torch.cat(shown), folder / "grid.png", nrow=nrow, value_range=model.value_range)
    return written or (folder / "grid.png" if grid else folder)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation, the right path between Gaussian latents (lerp for parallel ones)."""
    cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True))
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return torch.where(so.abs() < 1e-6, (1 - t) * a + t * b, (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so)


def interpolate(
    checkpoint: str, out: str | None = None, pairs: int = 4, steps: int = 8, label: int | None = None,
    seed: int = 0, overwrite: bool = False, device: str = "cpu", allow: list[str] | None = None,
) -> Path:
    """Walk between pairs of random latents: one grid row per pair, from one latent to the other.

    Slerp for normal noise, straight lines for uniform noise; conditional models hold `label` fixed.

    Args:
        checkpoint: a lit_gan checkpoint, e.g. runs/<run>/checkpoints/last.ckpt.
        out: the folder to write grid.png into; default: <run>/generated/interpolation-<checkpoint
            name> for a checkpoint in a run's checkpoints/ folder, else beside the checkpoint.
        pairs: how many pairs of latents (grid rows).
        steps: images from one latent to the other, both included (grid columns).
        label: the class every image shows (conditional models; default: 0).
        seed: seed of the latents: the same seed draws the same pairs.
        overwrite: write into a non-empty --out.
        device: where the generator runs: cpu, cuda, cuda:1, ...
        allow: your own network classes the checkpoint may name, e.g. [my.nets.Generator].
    """
    pairs, steps = _count("pairs", pairs), _count("steps", steps)
    model = load(checkpoint, device, allow)
    folder = _out_dir(out or beside_run(checkpoint, "generated", "interpolation"), overwrite)
    ends = _noise(model, 2 * pairs, seed).view(pairs, 2, -1)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    a, b = ends[:, :1], ends[:, 1:]
    z = slerp(a, b, t) if model.noise == "normal" else (1 - t) * a + t * b
    y = _labels(model, _one_label(model, label), pairs * steps)
    return save_grid(_draw(model, z.reshape(pairs * steps, -1), y), folder / "grid.png", nrow=steps, value_range=model.value_range)


def arithmetic(
    checkpoint: str, a: list[int], b: list[int], c: list[int], out: str | None = None, num: int = 64,
    label: int | None = None, seed: int = 0, overwrite: bool = False, device: str = "cpu", allow: list[str] | None = None,
) -> Path:
    """Latent vector arithmetic (Radford et al.): the image of mean z of A - mean z of B + mean z of C.

    Groups are indices into the `num` samples that `generate samples --seed SEED` draws (its grid,
    row by row). Writes one row: mean A, mean B, mean C, and the result.

    Args:
        checkpoint: a lit_gan checkpoint, e.g. runs/<run>/checkpoints/last.ckpt.
        a: group A: sample indices whose latents are averaged and added, e.g. [3,17].
        b: group B: sample indices whose mean latent is subtracted, e.g. [5].
        c: group C: sample indices whose mean latent is added, e.g. [40,41].
        out: the folder to write grid.png into; default: <run>/generated/arithmetic-<checkpoint
            name> for a checkpoint in a run's checkpoints/ folder, else beside the checkpoint.
        num: how many samples the indices choose from (those of generate samples --num NUM).
        label: the class every image shows (conditional models; default: 0).
        seed: seed of the samples (that of generate samples --seed SEED).
        overwrite: write into a non-empty --out.
        device: where the generator runs: cpu, cuda, cuda:1, ...
        allow: your own network classes the checkpoint may name, e.g. [my.nets.Generator].
    """
    num = _count("num", num)
    model = load(checkpoint, device, allow)
    folder = _out_dir(out or beside_run(checkpoint, "generated", "arithmetic"), overwrite)
    z = _noise(model, num, seed)
    for name, group in (("a", a), ("b", b), ("c", c)):
        if not group or min(group) < 0 or max(group) >= num:
            raise ValueError(f"--{name} needs sample indices in 0..{num - 1}, got {group}")
    means = [z[torch.tensor(g)].mean(0) for g in (a, b, c)]
    rows = torch.stack([*means, means[0] - means[1] + means[2]])
    y = _labels(model, _one_label(model, label), len(rows))
    return save_grid(_draw(model, rows, y), folder / "grid.png", nrow=len(rows), value_range=model.value_range)


DESCRIPTION = "Images, latent interpolations and latent arithmetic from a lit_gan checkpoint (seeded)."
COMMANDS: dict[str, Callable[..., Path]] = {"samples": samples, "interpolate": interpolate, "arithmetic": arithmetic}


def summary(docstring: str | None) -> str:
    """The first line of a docstring: its one-line description."""
    return (docstring or "").strip().splitlines()[0]


def parser() -> ArgumentParser:
    """`lit-gan generate`'s parser: one subcommand per function of `COMMANDS`, every option
    explained from its docstring's `Args:`."""
    from jsonargparse import ArgumentParser

    main = ArgumentParser(prog="lit-gan generate", exit_on_error=False, description=DESCRIPTION)
    commands = main.add_subcommands(dest="command")
    for name, function in COMMANDS.items():
        sub = ArgumentParser(exit_on_error=False, description=summary(function.__doc__))
        sub.add_function_arguments(function, as_group=False)
        commands.add_subcommand(name, sub, help=summary(function.__doc__))
    return main


def main(args: list[str] | None = None) -> None:
    from lit_gan.cli import shown

    config = parser().parse_args(args)
    options = config[config.command].as_dict()
    path = COMMANDS[config.command](**options)
    if config.command == "samples":  # path: the grid (png), the folder (png, no grid) or samples.pt / .npz
        written = path.parent if path.name == "grid.png" else path
        folder = written if written.is_dir() else written.parent
        grid = f" (grid: {shown(folder / 'grid.png')})" if options["grid"] else ""
        print(f"Wrote {options['num']} images to {shown(written)}{grid}")
    elif config.command == "interpolate":
        print(f"Wrote {options['pairs'] * options['steps']} images ({options['pairs']} pairs x {options['steps']} steps) "
              f"in one grid: {shown(path)}")
    else:
        print(f"Wrote 4 images (mean A, mean B, mean C, A - B + C) in one grid: {shown(path)}")
