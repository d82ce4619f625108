"""What a checkpoint may name. Its hyperparameters are data: every class path in them (and every
other dotted name, which a parser could import) must be one of lit_gan's own models and networks,
or one the user named on purpose. The check reads strings only, before anything is imported or
parsed, so a planted `os.system`, `subprocess.Popen` or a module with import side effects is
refused by name and never runs.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


class UntrustedCheckpoint(ValueError):
    """A checkpoint names a class that lit_gan does not build from files."""


_OWN: dict[str, str] = {}


def trust_classes(package: str, classes: Iterable[Any]) -> None:
    """Declare `classes`, exported by `package`, lit_gan's own: checkpoints may name them, by the
    public path (`lit_gan.nets.DCGANGenerator`) or the defining one (`lit_gan.nets.dcgan.DCGANGenerator`).
    The packages that define them call this (this module imports none of them)."""
    for cls in classes:
        if isinstance(cls, type) and cls.__module__.startswith("lit_gan."):
            defining = f"{cls.__module__}.{cls.__qualname__}"
            _OWN.update({f"{package}.{cls.__name__}": defining, defining: defining})


def own_classes() -> dict[str, str]:
    """Import paths of lit_gan's models and networks (as declared by `trust_classes`), each mapped
    to the defining one."""
    return _OWN


def canonical(class_path: Any) -> Any:
    """lit_gan's classes by their defining path, so both spellings of one class compare equal."""
    return own_classes().get(class_path, class_path) if isinstance(class_path, str) else class_path


def named_classes(config: Any) -> set[str]:
    """Every `class_path` in a config the user gave (their own classes are theirs to name)."""
    return {value for where, value in _walk(config) if where.endswith("class_path") and isinstance(value, str)}


def check_hparams(hparams: Any, source: Any, allowed: Iterable[str] = ()) -> None:
    """Refuse, in one line naming the field and value, any dotted name in `hparams` (a class path,
    or a string a parser would import) that is neither lit_gan's own class nor in `allowed`."""
    trusted = set(own_classes()) | set(allowed)
    for where, value in _walk(hparams):
        if isinstance(value, str) and _DOTTED.fullmatch(value) and value not in trusted:
            raise UntrustedCheckpoint(
                f"{source} names {value!r} (in hyper_parameters.{where}), which is not one of lit_gan's models or networks; "
                "nothing was imported or run. If you trust the file and the class is yours, name it: in --config "
                "or --model.init_args.generator.class_path (fit, validate, test, predict), or --allow [CLASS] (generate)")


def _walk(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """(where, value) for every leaf of nested dicts and lists, and (where, key) for every dict key
    (a parser reads keys too)."""
    if hasattr(value, "as_dict"):  # a jsonargparse Namespace
        value = value.as_dict()
    if isinstance(value, dict):
        for k, v in value.items():
            child = f"{where}.{k}" if where else str(k)
            yield f"{child} (a key)", k
            yield from _walk(v, child)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _walk(v, f"{where}[{i}]")
    else:
        yield where, value
