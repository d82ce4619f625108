"""`lit-gan demo`'s HTTP endpoints, without a browser (tests/integration/test_demo.py drives one)."""

from __future__ import annotations

import inspect
import io
import json
import re
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from lit_gan import demo, generate
from lit_gan.cli import main
from lit_gan.models import CDCGAN, DCGAN
from tests.conftest import tiny


def _save(model: torch.nn.Module, path: Path) -> Path:
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return _save(tiny(CDCGAN, num_classes=10), tmp_path_factory.mktemp("demo") / "cdcgan.ckpt")


@pytest.fixture(scope="module")
def uniform(tmp_path_factory) -> Path:
    return _save(tiny(DCGAN, latent={"noise": "uniform"}), tmp_path_factory.mktemp("demo") / "dcgan.ckpt")


def running(path: Path) -> Iterator[demo.Server]:
    server = demo.serve(generate.load(path), port=0, title=path.name)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def server(checkpoint) -> Iterator[demo.Server]:
    yield from running(checkpoint)


@pytest.fixture(scope="module")
def unconditional_server(uniform) -> Iterator[demo.Server]:
    yield from running(uniform)


def get(server: demo.Server, path: str, host: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(server.url + path.lstrip("/"), headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def pixels(data: bytes | Path) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data) if isinstance(data, bytes) else data))


def test_a_sample_is_generates_image_and_the_grid_its_grid(server, checkpoint, tmp_path):
    main(["generate", "samples", f"--checkpoint={checkpoint}", "--labels=[3]", "--seed=5", "--num=1", f"--out={tmp_path / 'one'}"])
    status, kind, body = get(server, "/samples.png?seed=5&class=3&batch=1")
    assert (status, kind) == (200, "image/png")
    assert np.array_equal(pixels(body), pixels(tmp_path / "one" / "000000.png")) and pixels(body).shape == (28, 28)
    main(["generate", "samples", f"--checkpoint={checkpoint}", "--labels=[3]", "--seed=5", "--num=12", "--grid=12",
          f"--out={tmp_path / 'grid'}"])
    status, _, body = get(server, "/samples.png?seed=5&class=3&batch=12")
    assert status == 200 and np.array_equal(pixels(body), pixels(tmp_path / "grid" / "grid.png"))
    assert pixels(body).shape == (2 * 30 + 2, 8 * 30 + 2)
    # another class or seed: another image
    assert get(server, "/samples.png?seed=5&class=4&batch=1")[2] != get(server, "/samples.png?seed=5&class=3&batch=1")[2]
    assert get(server, "/samples.png?seed=6&class=3&batch=1")[2] != get(server, "/samples.png?seed=5&class=3&batch=1")[2]


def expected(path: Path, z: torch.Tensor, label: int | None) -> np.ndarray:
    model = generate.load(path)
    images = generate._draw(model, z, None if label is None else torch.full((len(z),), label))
    return pixels(demo._png(images, len(z), model.value_range))


def ends(path: Path, a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    model = generate.load(path)
    return generate._noise(model, 1, a), generate._noise(model, 1, b)


def test_interpolation_slerps_normal_noise_from_one_seeds_sample_to_the_others(server, checkpoint):
    za, zb = ends(checkpoint, 2, 9)
    for t in (0.0, 0.3, 1.0):
        status, _, body = get(server, f"/interpolate.png?seed_a=2&seed_b=9&class=1&t={t}")
        assert status == 200
        assert np.array_equal(pixels(body), expected(checkpoint, generate.slerp(za, zb, torch.tensor([[t]])), 1))
    lerp = expected(checkpoint, 0.7 * za + 0.3 * zb, 1)
    assert not np.array_equal(pixels(get(server, "/interpolate.png?seed_a=2&seed_b=9&class=1&t=0.3")[2]), lerp)
    # the ends are the samples of the two seeds (within one level: slerp's arithmetic)
    first = pixels(get(server, "/samples.png?seed=2&class=1")[2]).astype(int)
    assert np.abs(pixels(get(server, "/interpolate.png?seed_a=2&seed_b=9&class=1&t=0")[2]).astype(int) - first).max() <= 1
    status, _, row = get(server, "/interpolate.png?seed_a=2&seed_b=9&class=1&steps=5")
    assert status == 200 and pixels(row).shape == (32, 5 * 30 + 2)


def test_interpolation_lerps_uniform_noise_and_unconditional_models_take_no_class(unconditional_server, uniform):
    za, zb = ends(uniform, 0, 1)
    status, _, body = get(unconditional_server, "/interpolate.png?seed_a=0&seed_b=1&t=0.5")
    assert status == 200 and np.array_equal(pixels(body), expected(uniform, 0.5 * za + 0.5 * zb, None))
    assert get(unconditional_server, "/samples.png?seed=0&batch=2")[0] == 200
    status, _, body = get(unconditional_server, "/samples.png?seed=0&class=1")
    assert status == 400 and "not conditional" in json.loads(body)["error"]
    info = json.loads(get(unconditional_server, "/info")[2])
    assert info["conditional"] is False and info["noise"] == "uniform" and info["title"] == "dcgan.ckpt"


BAD = {
    "unknown class": ("/samples.png?seed=0&class=10", "unknown class '10': this model has classes 0 to 9"),
    "class not a number": ("/samples.png?seed=0&class=three", "unknown class 'three'"),
    "no class": ("/samples.png?seed=0", "choose a class"),
    "seed not a number": ("/samples.png?seed=abc&class=1", "seed must be a whole number from 0 to 2^63 - 1, got 'abc'"),
    "negative seed": ("/samples.png?seed=-1&class=1", "seed must be a whole number"),
    "seed in other digits": ("/samples.png?seed=%D9%A3&class=1", "seed must be a whole number"),  # Arabic-Indic 3: int() takes it
    "huge seed": ("/samples.png?seed=99999999999999999999&class=1", "seed must be a whole number"),
    "huge batch": ("/samples.png?seed=0&class=1&batch=100000", "batch must be a whole number from 1 to 64 (images at a time), got '100000'"),
    "zero batch": ("/samples.png?seed=0&class=1&batch=0", "batch must be a whole number from 1"),
    "unknown parameter": ("/samples.png?seed=0&class=1&num=3", "unknown parameter 'num'"),
    "t not a number": ("/interpolate.png?seed_a=0&seed_b=1&class=1&t=half", "t must be a number from 0 to 1, got 'half'"),
    "t NaN": ("/interpolate.png?seed_a=0&seed_b=1&class=1&t=nan", "t must be a number from 0 to 1"),
    "t above 1": ("/interpolate.png?seed_a=0&seed_b=1&class=1&t=1.5", "t must be a number from 0 to 1"),
    "t and steps": ("/interpolate.png?seed_a=0&seed_b=1&class=1&t=0.5&steps=4", "give either t"),
    "too many steps": ("/interpolate.png?seed_a=0&seed_b=1&class=1&steps=1000", "steps must be a whole number from 2 to 16"),
    "no seed_b": ("/interpolate.png?seed_a=0&class=1&t=0", "seed_b must be a whole number"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_400_with_one_line_and_the_server_stays_up(server, case):
    path, message = BAD[case]
    status, kind, body = get(server, path)
    assert (status, kind) == (400, "application/json")
    error = json.loads(body)["error"]
    assert message in error and "\n" not in error and "Traceback" not in error
    assert get(server, "/samples.png?seed=0&class=1")[0] == 200


def test_the_page_and_the_info(server):
    status, kind, page = get(server, "/")
    assert (status, kind) == (200, "text/html; charset=utf-8")
    text = page.decode()
    assert "<script>" in text and "/samples.png" in text and "/interpolate.png" in text
    assert not re.search(r"(src|href)=\"(https?:)?//|@import|<link", text), "the page must work offline: nothing from elsewhere"
    info = json.loads(get(server, "/info")[2])
    assert info == {"title": "cdcgan.ckpt", "conditional": True, "num_classes": 10, "image_shape": [1, 28, 28],
                    "latent_dim": 16, "noise": "normal", "max_batch": 64, "max_steps": 16}
    status, _, body = get(server, "/missing")
    assert status == 404 and "no page /missing" in json.loads(body)["error"]


def test_binds_to_localhost_by_default_and_answers_only_requests_for_it(server):
    assert inspect.signature(demo.demo).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(demo.serve).parameters["host"].default == "127.0.0.1"
    assert server.server_address[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    assert get(server, "/info", host="localhost:8000")[0] == 200
    status, _, body = get(server, "/info", host="attacker.example:8000")  # a DNS-rebinding page
    assert status == 403 and "only to localhost" in json.loads(body)["error"]


def test_the_command_prints_its_url_and_stops_on_ctrl_c(checkpoint, monkeypatch, capsys):
    listened = []

    def interrupted(self: demo.Server, poll_interval: float = 0.5) -> None:
        listened.append(self.server_address)
        raise KeyboardInterrupt

    monkeypatch.setattr(demo.Server, "serve_forever", interrupted)
    main(["demo", f"--checkpoint={checkpoint}", "--port=0"])
    out = capsys.readouterr()
    (host, port), = listened
    assert host == "127.0.0.1" and port > 0
    assert out.out == f"lit-gan demo: http://127.0.0.1:{port}/ (Ctrl+C stops it)\n" and "stopped" in out.err


def test_a_taken_port_or_a_missing_checkpoint_is_one_line(checkpoint, tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main(["demo", f"--checkpoint={checkpoint}", f"--port={port}"])
    assert exit_info.value.code == 2
    assert f"port {port} is in use on 127.0.0.1; choose another --port (0: any free port)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", f"--checkpoint={tmp_path / 'missing.ckpt'}"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1 and "missing.ckpt" in err
    with pytest.raises(SystemExit):
        main(["demo", f"--checkpoint={checkpoint}", "--port=70000"])
    assert "--port must be from 0 to 65535" in capsys.readouterr().err


def test_a_bug_is_a_500_with_one_line_and_the_server_stays_up(server, monkeypatch, capsys):
    def broken(*args: object) -> None:
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(demo, "_draw", broken)
    status, _, body = get(server, "/samples.png?seed=0&class=1")
    assert status == 500 and json.loads(body)["error"] == "internal error: RuntimeError: out of cheese"
    assert "Traceback" in capsys.readouterr().err  # for whoever runs the server: it is a bug
    monkeypatch.undo()
    assert get(server, "/samples.png?seed=0&class=1")[0] == 200
