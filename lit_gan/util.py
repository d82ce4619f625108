"""Generic helpers every layer of lit_gan uses: argument checks, plug-ins built by name, guarded downloads.
This module imports nothing of lit_gan, so any module may import it."""

from __future__ import annotations

import dataclasses
import inspect
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

DOWNLOAD_TIMEOUT_S: float = 60.0
"""Socket timeout while downloading, so a blocked network fails instead of hanging."""


def require(ok: bool, message: str) -> None:
    """Stop with `message` (what is wrong and how to fix it) unless `ok`."""
    if not ok:
        raise ValueError(message)


def check_int(name: str, value: Any, minimum: int, hint: str) -> None:
    """`value` must be an int (not a bool) >= `minimum`; else one line naming it, with `hint` on how to fix it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}; {hint}")


def download_or_raise(download: Callable[[], Any], error: FileNotFoundError) -> None:
    """Run ``download`` with a socket timeout; on any failure raise ``error`` with the reason."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        download()
    except Exception as err:  # noqa: BLE001 - any download failure becomes the clear message
        raise FileNotFoundError(f"{error} (the download failed: {type(err).__name__}: {err})") from err
    finally:
        socket.setdefaulttimeout(previous)


def parts(spec: str | Mapping[str, Mapping[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """A plug-in spec as {name: arguments}: "hinge" -> {"hinge": {}}; {"r1": {"gamma": 1}} as it is."""
    if isinstance(spec, str):
        return {spec: {}}
    require(isinstance(spec, Mapping), f"expected a name or {{name: arguments}}, got {spec!r}")
    return {str(name): dict(args or {}) for name, args in spec.items()}


def construct(kind: str, registry: Mapping[str, Callable[..., Any]], name: str, args: Mapping[str, Any]) -> Any:
    """`registry[name](**args)`, with one line naming what is wrong when `name` is unknown or the
    arguments do not fit (checked before the call, so errors inside it are not masked)."""
    require(name in registry, f"unknown {kind} {name!r}; choose from {sorted(registry)}")
    cls = registry[name]
    try:
        inspect.signature(cls).bind(**args)
    except TypeError:
        takes = ", ".join(inspect.signature(cls).parameters) or "no arguments"
        raise ValueError(f"{kind} {name!r} takes {takes}; got {dict(args)}") from None
    return cls(**args)


def parse(cls: type[T], value: T | Mapping[str, Any], argument: str) -> T:
    """A settings dataclass from itself or from a mapping (as configs deliver it)."""
    if isinstance(value, cls):
        return value
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    require(isinstance(value, Mapping) and set(value) <= set(fields), f"{argument} takes {', '.join(fields)}; got {value!r}")
    return cls(**value)
