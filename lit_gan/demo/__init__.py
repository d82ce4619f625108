"""`lit-gan demo`: a local web page to look at a trained generator: samples by class and seed,
a slider between two seeds, PNG downloads of one image or the grid.

    lit-gan demo --checkpoint runs/<run>/checkpoints/last.ckpt   # prints http://127.0.0.1:8000/

Served by Python's own `http.server` (a ThreadingHTTPServer), so the `demo` extra installs
nothing: the page is one static file (`page.html`, its script and style inline, no CDN: it works
offline) and the images come from two GET endpoints. A small ASGI app (starlette + uvicorn) would
add five packages and Gradio dozens (and seconds of import) for nothing this page needs: no
websockets, no uploads, one user. `http.server` is not hardened for the open internet, so the
server binds to 127.0.0.1 unless `--host` says otherwise, and then (bound to loopback) answers
only requests addressed to localhost (a DNS-rebinding page cannot use it). Model calls run one at
a time; batches are capped (`--max_batch`).

Images are `lit-gan generate`'s: the `/samples.png?seed=S&class=C&batch=N` grid is that of
`lit-gan generate samples --seed S --labels [C] --num N --grid N` (N = 1: its first image);
`/interpolate.png?seed_a=A&seed_b=B&class=C&t=T` moves from the first latent of seed A to that of
seed B (slerp for normal noise, a straight line for uniform noise, as `generate interpolate`),
`&steps=K` instead of `&t` gives the row of K images. Bad input is answered 400 with
`{"error": "..."}`, which the page shows.
"""

from __future__ import annotations

import errno
import io
import ipaddress
import json
import math
import re
import socket
import socketserver
import sys
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

from lit_gan import progress
from lit_gan.generate import _draw, _Noise, load, slerp
from lit_gan.images import to_uint8
from lit_gan.models import Generative

MAX_SEED = 2**63 - 1
MAX_STEPS = 16
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


class BadRequest(ValueError):
    """Input the page sent that the model cannot draw: answered 400 with this message."""


def _png(images: Tensor, nrow: int, value_range: tuple[float, float]) -> bytes:
    """PNG bytes of `images` as `lit_gan.images.save_grid` writes them (one image: no border)."""
    grid = make_grid(to_uint8(images, value_range), nrow=nrow, padding=2, pad_value=255)[: images.shape[1]]
    array = grid.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()


def _whole(query: dict[str, str], name: str, lo: int, hi: int, default: int | None = None, what: str = "") -> int:
    """The query's `name` as an int in lo..hi (ASCII digits only: no signs, blanks, `_` or other scripts)."""
    text = query.get(name, "").strip()
    if not text and default is not None:
        return default
    if not re.fullmatch(r"[0-9]{1,19}", text) or not lo <= int(text) <= hi:
        top = "2^63 - 1" if hi == MAX_SEED else str(hi)
        raise BadRequest(f"{name} must be a whole number from {lo} to {top}{what}, got {text!r}")
    return int(text)


class Demo:
    """The model behind the page: checks the query of each request and draws its images."""

    def __init__(self, model: Generative, max_batch: int = 64, title: str = "") -> None:
        self.model, self.max_batch, self.title, self.lock = model, max_batch, title, threading.Lock()

    def info(self) -> dict[str, object]:
        hp = self.model.hparams
        return {"title": self.title, "conditional": self.model.conditional, "num_classes": self.model.num_classes,
                "image_shape": [int(s) for s in hp.image_shape], "latent_dim": self.model.latent_dim, "noise": self.model.noise,
                "max_batch": self.max_batch, "max_steps": MAX_STEPS}

    def _label(self, query: dict[str, str]) -> int | None:
        if not self.model.conditional:
            if query.get("class", "").strip():
                raise BadRequest("this model is not conditional: it draws no chosen class")
            return None
        k = self.model.num_classes
        text = query.get("class", "").strip()
        if not text:
            raise BadRequest(f"choose a class: this model has classes 0 to {k - 1}")
        if not re.fullmatch(r"[0-9]{1,19}", text) or int(text) >= k:
            raise BadRequest(f"unknown class {text!r}: this model has classes 0 to {k - 1}")
        return int(text)

    def _run(self, z: Tensor, label: int | None, nrow: int) -> bytes:
        labels = None if label is None else torch.full((len(z),), label)
        images = _draw(self.model, z, labels)
        return _png(images, nrow, self.model.value_range)

    def samples(self, query: dict[str, str]) -> bytes:
        """The first `batch` images of `generate samples --seed S --labels [C]`, 8 a row."""
        seed, label = _whole(query, "seed", 0, MAX_SEED), self._label(query)
        batch = _whole(query, "batch", 1, self.max_batch, default=1, what=" (images at a time)")
        with self.lock:
            return self._run(_Noise(self.model, seed).take(batch), label, nrow=min(8, batch))

    def interpolate(self, query: dict[str, str]) -> bytes:
        """The image at `t` (0: seed A's first sample, 1: seed B's), or `steps` images from A to B."""
        a, b = (_whole(query, name, 0, MAX_SEED) for name in ("seed_a", "seed_b"))
        label = self._label(query)
        if ("t" in query) == ("steps" in query):
            raise BadRequest("give either t (one image) or steps (a row of images)")
        if "steps" in query:
            steps = _whole(query, "steps", 2, MAX_STEPS)
            t = torch.linspace(0, 1, steps)
        else:
            try:
                value = float(query["t"])
            except ValueError:
                value = math.nan
            if not 0 <= value <= 1:  # also NaN
                raise BadRequest(f"t must be a number from 0 to 1, got {query['t']!r}")
            t = torch.tensor([value])
        with self.lock:
            za, zb = _Noise(self.model, a).take(1), _Noise(self.model, b).take(1)
            t = t.view(-1, 1).to(za)
            z = slerp(za, zb, t) if self.model.noise == "normal" else (1 - t) * za + t * zb
            return self._run(z, label, nrow=len(z))


def _error(status: int, message: str) -> tuple[int, bytes, str]:
    return status, json.dumps({"error": message}).encode(), "application/json"


class _Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = "lit-gan-demo"
    routes: dict[str, tuple[tuple[str, ...], Callable[[Demo, dict[str, str]], bytes]]] = {
        "/samples.png": (("seed", "class", "batch"), Demo.samples),
        "/interpolate.png": (("seed_a", "seed_b", "class", "t", "steps"), Demo.interpolate),
    }

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status, body, content_type = self._answer()
        try:
            self._send(status, body, content_type)
        except ConnectionError:  # the page stopped waiting (a newer slider position): nobody to answer
            pass

    def _answer(self) -> tuple[int, bytes, str]:
        url = urlsplit(self.path)
        try:
            if not self.server.accepts(self.headers.get("Host", "")):
                return _error(403, "this demo answers only to localhost")
            if url.path == "/":
                return 200, self.server.page, "text/html; charset=utf-8"
            if url.path == "/info":
                return 200, json.dumps(self.server.demo.info()).encode(), "application/json"
            if url.path not in self.routes:
                return _error(404, f"no page {url.path}")
            names, draw = self.routes[url.path]
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            unknown = sorted(set(query) - set(names))
            if unknown:
                raise BadRequest(f"unknown parameter {unknown[0]!r}; {url.path} takes {', '.join(names)}")
            return 200, draw(self.server.demo, query), "image/png"
        except BadRequest as error:
            return _error(400, str(error))
        except Exception as error:  # a bug: the page gets one line, the console the traceback
            traceback.print_exc()
            return _error(500, f"internal error: {type(error).__name__}: {error}")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                         "img-src data: blob:; connect-src 'self'")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # no line per request (the slider sends many)


class Server(ThreadingHTTPServer):
    """The demo's HTTP server; `url` is where it listens. Run it with `serve_forever()`."""

    daemon_threads = True

    def __init__(self, demo: Demo, host: str, port: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.demo, self.page = demo, resources.files(__package__).joinpath("page.html").read_bytes()
        super().__init__((host, port), _Handler)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.server_address[1]}/"
        self.loopback = host == "localhost" or _is_loopback(host)

    def server_bind(self) -> None:
        """As HTTPServer's, without its reverse DNS lookup of the host (seconds on machines without DNS)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def accepts(self, host_header: str) -> bool:
        """Bound to loopback: only requests for localhost (a DNS-rebinding page names its own host)."""
        name = re.sub(r":[0-9]*$", "", host_header.strip()).strip("[]").lower()
        return not self.loopback or name in LOOPBACK_NAMES or _is_loopback(name)

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a closed tab is no error
            super().handle_error(request, client_address)

    def service_actions(self) -> None:
        progress.check_stop()  # SIGTERM (the CLI's handler only sets a flag): `lit-gan` exits 143


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(port: int, max_batch: int) -> None:
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be from 0 to 65535 (0: any free port), got {port}")
    if max_batch < 1:
        raise ValueError(f"--max_batch must be at least 1, got {max_batch}")


def serve(model: Generative, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 64, title: str = "") -> Server:
    """A bound server for `model` (port 0: a free one); nothing is answered until `serve_forever()`."""
    _check(port, max_batch)
    try:
        return Server(Demo(model, max_batch, title), host, port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ValueError(f"port {port} is in use on {host}; choose another --port (0: any free port)") from None
        raise ValueError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


def demo(checkpoint: str, host: str = "127.0.0.1", port: int = 8000, device: str = "cpu", max_batch: int = 64,
         allow: list[str] | None = None) -> None:
    """Serve the page for `checkpoint` at http://HOST:PORT/ until Ctrl+C.

    Args:
        checkpoint: a lit_gan checkpoint (of any variant or version).
        host: the address to listen on; 127.0.0.1 (this machine only) unless you choose another.
        port: the port; 0 picks a free one.
        device: where the generator runs (cpu, cuda, ...).
        max_batch: the most images one request may ask for.
        allow: your own network classes the checkpoint may name (as for generate).
    """
    _check(port, max_batch)  # before the model loads
    model = load(checkpoint, device, allow)
    path = Path(checkpoint)
    title = f"{path.parent.parent.name}/{path.name}" if path.parent.name == "checkpoints" else path.name  # the run's name
    server = serve(model, host, port, max_batch, title=title)
    print(f"lit-gan demo: {server.url} (Ctrl+C stops it)", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        print("lit-gan demo: stopped", file=sys.stderr)
    finally:
        server.server_close()


def main(args: list[str] | None = None) -> None:
    from jsonargparse import CLI

    CLI(demo, args=args, as_positional=False)
