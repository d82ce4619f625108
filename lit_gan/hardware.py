"""What the CPU can do fast: native bf16 or not (bf16-mixed is emulated, and far slower, without it);
and no NVIDIA driver probe in every optimizer step where there is no driver."""

from __future__ import annotations

import ctypes
import os

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


NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def nvml_loads() -> bool:
    """Whether NVIDIA's management library (shipped with the driver) can be loaded."""
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
        return True
    except OSError:
        return False


def skip_nvml_probe_without_driver() -> None:
    """Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (so that asking for GPUs does not initialise CUDA
    before a fork). Then every `torch.cuda.is_available()`, which Adam's and SGD's `step` call, tries to
    load NVML until CUDA is initialised: on a machine without an NVIDIA driver (a CUDA build of torch on
    a CPU box) that failed load costs about 0.1 ms per optimizer step. Without the driver there is no GPU
    to protect, so torch's own cached device count answers instead."""
    if os.environ.get(NVML_CHECK) == "1" and not nvml_loads():
        os.environ[NVML_CHECK] = "0"
