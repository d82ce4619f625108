"""Progress bars for the long steps outside Lightning's own bar: classifier training, real
statistics, `lit-gan generate`, the study runner."""

from __future__ import annotations

from typing import Any, Iterable

from tqdm.auto import tqdm


def bar(iterable: Iterable[Any] | None = None, total: int | None = None, desc: str = "", unit: str = "it",
        enabled: bool = True, initial: int = 0) -> tqdm:
    """A tqdm bar on stderr that disappears when done (`enabled=False`: counts silently)."""
    return tqdm(iterable, total=total, initial=initial, desc=desc, unit=unit, leave=False, dynamic_ncols=True, mininterval=0.5,
                disable=not enabled)
