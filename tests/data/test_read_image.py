"""read_image with more than 8 bits per channel: 16-bit greyscale (PNG, TIFF, both byte orders),
32-bit integer, 48/64-bit RGB(A) and 32-bit grey+alpha PNGs are rescaled 0..65535 -> 0..255
(rounded) instead of PIL's clipping; float images, and integer ones beyond 16 bits, are refused."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_gan.data import ImageFolder
from lit_gan.data.base import read_image

# 0, the top, the middle, every 257 * k (-> k), and values either side of a rounding boundary
SIXTEEN_BIT = np.array(
    [0, 65535, 32768, 128, 129, 385, 386, 448, 511, 65407, 65408, *range(0, 65536, 257)], dtype=np.uint16
)


def expected_8bit(values: np.ndarray) -> np.ndarray:
    """round(v * 255 / 65535), in floats (there are no ties: v / 257 is never k + 1/2)."""
    return np.round(values.astype(np.float64) * 255 / 65535).astype(np.uint8)


def write_png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit PNG (grey+alpha, RGB or RGBA by the channel count of (H, W, C) ``pixels``), written by
    hand (PIL cannot), its rows cycling through the five PNG filters (None, Sub, Up, Average, Paeth)."""
    height, width, channels = pixels.shape
    color_type = {2: 4, 3: 2, 4: 6}[channels]
    rows = [np.frombuffer(row.astype(">u2").tobytes(), np.uint8).astype(np.int64) for row in pixels]
    bpp = 2 * channels
    raw = b""
    previous = np.zeros_like(rows[0])
    for y, row in enumerate(rows):
        kind = y % 5
        left = np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
        up_left = np.concatenate([np.zeros(bpp, np.int64), previous[:-bpp]])
        if kind == 0:
            predictor = np.zeros_like(row)
        elif kind == 1:
            predictor = left
        elif kind == 2:
            predictor = previous
        elif kind == 3:
            predictor = (left + previous) // 2
        else:
            p = left + previous - up_left
            pa, pb, pc = abs(p - left), abs(p - previous), abs(p - up_left)
            predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, previous, up_left))
        raw += bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes()
        previous = row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def random_16bit(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    values = np.random.default_rng(seed).integers(0, 65536, size=shape, dtype=np.uint16)
    values.flat[: len(SIXTEEN_BIT)] = SIXTEEN_BIT[: values.size]
    return values


def test_16bit_greyscale_png_is_rescaled_not_clipped(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(SIXTEEN_BIT.reshape(1, -1)).save(path)
    with Image.open(path) as image:
        assert image.mode in ("I;16", "I")  # "I" on older Pillow
    want = expected_8bit(SIXTEEN_BIT).reshape(1, -1)
    assert want[0, :3].tolist() == [0, 255, 128] and want[0, 11:].tolist() == list(range(256))
    grey = read_image(path, "L")
    assert grey.mode == "L" and np.array_equal(np.asarray(grey), want)
    rgb = read_image(path, "RGB")
    assert rgb.mode == "RGB" and np.array_equal(np.asarray(rgb), np.repeat(want[..., None], 3, axis=-1))


@pytest.mark.parametrize("dtype", ["<u2", ">u2"])
def test_16bit_tiff_either_byte_order_is_rescaled(tmp_path, dtype):
    path = tmp_path / "grey16.tif"
    Image.fromarray(SIXTEEN_BIT.reshape(3, -1).astype(dtype)).save(path)
    with Image.open(path) as image:
        assert image.mode == ("I;16" if dtype == "<u2" else "I;16B")
    assert np.array_equal(np.asarray(read_image(path, "L")), expected_8bit(SIXTEEN_BIT).reshape(3, -1))


def test_32bit_integer_image_in_16bit_range_is_rescaled_else_refused(tmp_path):
    path = tmp_path / "int32.tif"
    Image.fromarray(SIXTEEN_BIT.reshape(1, -1).astype(np.int32)).save(path)
    with Image.open(path) as image:
        assert image.mode == "I"
    assert np.array_equal(np.asarray(read_image(path, "L")), expected_8bit(SIXTEEN_BIT).reshape(1, -1))
    for name, values in [("big.tif", [0, 70000]), ("negative.tif", [-5, 3])]:
        bad = tmp_path / name
        Image.fromarray(np.array([values], dtype=np.int32)).save(bad)
        with pytest.raises(ValueError) as err:
            read_image(bad, "RGB")
        message = str(err.value)
        assert "\n" not in message and str(bad) in message
        assert re.search(r"mode I\) span -?\d+\.\.\d+, beyond 16-bit 0\.\.65535; convert it to an 8- or 16-bit", message)


def test_float_image_is_refused_with_a_one_line_message_naming_the_file(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)).save(path)
    with Image.open(path) as image:
        assert image.mode == "F"
    for mode in ("L", "RGB"):
        with pytest.raises(ValueError) as err:
            read_image(path, mode)
        message = str(err.value)
        assert "\n" not in message
        assert message == (f"cannot read image {path}: 32-bit float pixels (mode F) have no known range to map "
                           "to 0..255; convert it to an 8- or 16-bit image")


@pytest.mark.parametrize("channels", [3, 4, 2])
def test_16bit_colour_and_grey_alpha_pngs_keep_their_low_bytes(tmp_path, channels):
    """PIL opens these as 8-bit "RGB"/"RGBA" from the high bytes alone (truncating, e.g. 511 -> 1,
    not 2); read_image rounds the full 16-bit values like the greyscale ones."""
    pixels = random_16bit((11, 7, channels))
    path = write_png16(tmp_path / f"c{channels}.png", pixels)
    with Image.open(path) as image:
        assert image.mode == ("RGB" if channels == 3 else "RGBA")
    want = expected_8bit(pixels)
    if channels == 2:  # grey+alpha: L keeps the grey, RGB replicates it (alpha is dropped, as for 8-bit LA)
        want_rgb, want_l = np.repeat(want[..., :1], 3, axis=-1), want[..., 0]
    else:
        want_rgb = want[..., :3]
        want_l = np.asarray(Image.fromarray(want).convert("L"))  # as PIL turns the 8-bit colours grey
    assert np.array_equal(np.asarray(read_image(path, "RGB")), want_rgb)
    assert np.array_equal(np.asarray(read_image(path, "L")), want_l)


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_mixing_16bit_and_8bit_pngs(tmp_path, channels):
    """End to end: the data module's uint8 images hold the rescaled 16-bit values, and 8-bit files
    are exactly what PIL's conversion gives."""
    root = tmp_path / "mixed"
    root.mkdir()
    grey16 = random_16bit((8, 8), seed=1)
    Image.fromarray(grey16).save(root / "grey16.png")
    rgb48 = random_16bit((8, 8, 3), seed=2)
    write_png16(root / "rgb48.png", rgb48)
    rgb8 = np.random.default_rng(3).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb8).save(root / "rgb8.png")
    mode = "L" if channels == 1 else "RGB"
    expected = {
        "grey16.png": Image.fromarray(expected_8bit(grey16)).convert(mode),
        "rgb48.png": Image.fromarray(expected_8bit(rgb48)).convert(mode),
        "rgb8.png": Image.fromarray(rgb8).convert(mode),
    }
    dm = ImageFolder(root=str(root), image_size=8, channels=channels, in_memory=False, val_fraction=0.0,
                     batch_size=3)
    dm.setup("fit")
    assert len(dm.train_set) == 3
    for i, index in enumerate(dm.train_set.indices):
        image, _ = dm.train_set[i]
        want = np.asarray(expected[dm.paths[index].name]).reshape(8, 8, channels).transpose(2, 0, 1)
        assert image.dtype == torch.uint8 and np.array_equal(image.numpy(), want), dm.paths[index].name
