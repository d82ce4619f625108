"""Progress bars for the long steps outside Lightning's own bar: classifier training, real
statistics, `lit-gan generate`, the study runner. Every bar is also a place where a requested
stop (SIGTERM during `validate`, say, while a classifier trains) takes effect: Lightning checks
SIGTERM only between training batches, so these loops check it at each step."""

from __future__ import annotations

import signal
from typing import Any, Iterable, Iterator

from lightning.pytorch.utilities.exceptions import SIGTERMException
from tqdm.auto import tqdm

_stop_requested = False


def request_stop(signum: int = signal.SIGTERM, frame: Any = None) -> None:
    """The SIGTERM handler the CLI installs (Lightning adds its own beside it): every bar stops at its next step."""
    global _stop_requested
    _stop_requested = True


def stop_requested() -> bool:
    return _stop_requested


def reset_stop() -> None:
    global _stop_requested
    _stop_requested = False


def check_stop() -> None:
    """Raise Lightning's SIGTERMException when a stop was requested (the CLI exits 143)."""
    if _stop_requested:
        raise SIGTERMException


class _Bar(tqdm):
    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            check_stop()
            yield item

    def update(self, n: float | None = 1) -> bool | None:
        check_stop()
        return super().update(n)


def bar(iterable: Iterable[Any] | None = None, total: int | None = None, desc: str = "", unit: str = "it",
        enabled: bool = True, initial: int = 0) -> tqdm:
    """A tqdm bar on stderr that disappears when done (`enabled=False`: counts silently), and stops
    at the next step once a stop was requested."""
    return _Bar(iterable, total=total, initial=initial, desc=desc, unit=unit, leave=False, dynamic_ncols=True, mininterval=0.5,
                disable=not enabled)
