"""Errors lit_gan raises on purpose, with messages that say what to do."""

from __future__ import annotations


class Diverged(FloatingPointError):
    """Training produced a non-finite loss, weight or image: the run stops and saves nothing
    non-finite, so `last.ckpt` keeps the last finite state."""
