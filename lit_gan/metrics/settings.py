"""What an evaluation computes, and on how many samples: :class:`Settings`, part of the protocol of every number."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass
class Settings:
    """What an evaluation computes, and on how many samples (all of it is part of the protocol).

    Args:
        num_fake: generated samples.
        num_real: real images of ``real_split`` (a seeded subset; None: the whole split).
        real_split: the real reference: "train", "val" or "test". The Evaluation callback uses it
            for validation (fit, validate); its ``test`` always takes "test" (and ``seed`` plus
            ``lit_gan.callbacks.metrics.TEST_SEED_OFFSET``).
        batch_size: images per generator / extractor call.
        kid_subsets: KID is the mean ± std over this many random subsets.
        kid_subset_size: images per KID subset (capped at the smaller set).
        is_splits: IS is the mean ± std over this many splits.
        prc_neighbourhood: k of precision/recall (torch-fidelity's default 3).
        dc_neighbourhood: k of density/coverage (Naeem et al.'s 5).
        cover_ratio: a class is covered when its share of the samples is >= cover_ratio x its
            share of the data (0.25: 2.5% of the samples for one of ten equal classes; keep it
            above the classifier's confusion, or misclassified samples "cover" classes).
        neighbour_rows: generated samples in the nearest-neighbour picture, one per row.
        neighbour_k: real images beside each of them: its nearest in feature space.
        seed: seed of the noise, the labels asked for and the real subset.
    """

    num_fake: int = 5000
    num_real: int | None = 5000
    real_split: Literal["train", "val", "test"] = "train"
    batch_size: int = 250
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    prc_neighbourhood: int = 3
    dc_neighbourhood: int = 5
    cover_ratio: float = 0.25
    neighbour_rows: int = 8
    neighbour_k: int = 3
    seed: int = 0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        real_ok = self.num_real is None or (_is_int(self.num_real) and self.num_real >= 6)
        if not (_is_int(self.num_fake) and self.num_fake >= 4 and real_ok):
            raise ValueError(f"evaluation needs num_fake >= 4 and num_real >= 6 (or None: the whole split); got "
                             f"{self.num_fake!r}, {self.num_real!r}; raise --evaluation.settings.num_fake / num_real")
        for name, minimum in _MINIMUMS.items():
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                raise ValueError(f"evaluation setting {name} must be an integer >= {minimum}, got {value!r}; set "
                                 f"--evaluation.settings.{name} (default {_DEFAULTS[name]})")
        if self.real_split not in ("train", "val", "test"):
            raise ValueError(f"real_split must be 'train', 'val' or 'test', got {self.real_split!r}; set "
                             "--evaluation.settings.real_split")
        if isinstance(self.cover_ratio, bool) or not isinstance(self.cover_ratio, (int, float)) or not self.cover_ratio > 0:
            raise ValueError(f"cover_ratio must be a number > 0, got {self.cover_ratio!r}; set "
                             f"--evaluation.settings.cover_ratio (default {_DEFAULTS['cover_ratio']})")
        k = max(self.prc_neighbourhood, self.dc_neighbourhood, self.neighbour_k)
        if self.num_fake <= self.prc_neighbourhood or (self.num_real is not None and self.num_real <= k):
            raise ValueError(f"the neighbourhoods (prc_neighbourhood {self.prc_neighbourhood}, dc_neighbourhood "
                             f"{self.dc_neighbourhood}, neighbour_k {self.neighbour_k}) need more images than "
                             f"their size; got num_fake {self.num_fake}, num_real {self.num_real}: raise "
                             "--evaluation.settings.num_fake / num_real or lower the neighbourhoods")

    @classmethod
    def parse(cls, value: Settings | Mapping[str, Any]) -> Settings:
        """`Settings` from itself or from a mapping (as configs deliver it)."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"evaluation settings must be a Settings or a mapping of its fields, got "
                            f"{type(value).__name__}: {value!r}")
        unknown = sorted(set(value) - set(_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown evaluation settings {unknown}; valid: {', '.join(_DEFAULTS)}")
        return cls(**value)


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Settings)}
_MINIMUMS: dict[str, int] = {"batch_size": 1, "kid_subsets": 1, "kid_subset_size": 2, "is_splits": 1,
                             "prc_neighbourhood": 1, "dc_neighbourhood": 1, "neighbour_rows": 1, "neighbour_k": 1,
                             "seed": 0}
"""The smallest value of each integer setting but num_fake and num_real (checked together)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
