"""What the CPU can do fast: native bf16 or not (bf16-mixed is emulated, and far slower, without it)."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn


def cpu_has_bf16() -> bool:
    """Whether oneDNN finds native bf16 instructions (AVX512-BF16 or AMX) on this CPU; True when torch
    cannot tell, so that a build without the check never warns wrongly."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


def cpu_features() -> str:
    """The CPU's vector capability and native bf16, for benchmark headers (bf16 speed depends on it)."""
    return f"CPU {torch.backends.cpu.get_cpu_capability()}, native bf16 {'yes' if cpu_has_bf16() else 'no (emulated)'}"


def warn_if_bf16_is_emulated(trainer: L.Trainer) -> None:
    """Warns when a bf16 fit runs on a CPU without native bf16: emulated, it is much slower than fp32
    (15x for a DCGAN on an AVX2 CPU, bench/results/quality_per_minute_avx2.md)."""
    if str(trainer.precision).startswith("bf16") and trainer.strategy.root_device.type == "cpu" and not cpu_has_bf16():
        rank_zero_warn(f"precision {trainer.precision} on this CPU ({torch.backends.cpu.get_cpu_capability()}, no "
                       "AVX512-BF16/AMX) is emulated and much slower than fp32: use --trainer.precision 32-true "
                       "unless you are checking bf16 itself")
