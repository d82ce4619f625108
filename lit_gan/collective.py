"""Collectives outside DDP's wrappers, for parts that train or count on their own (the unrolled
D's look-ahead copy, ADA's statistics): no-ops in one process."""

from __future__ import annotations

import torch.distributed as dist
from torch import Tensor, nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


def world_size() -> int:
    """Processes in the default group (1 without torch.distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def average_gradients(module: nn.Module) -> None:
    """Average `module`'s gradients over the processes, in one all-reduce."""
    n = world_size()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if n == 1 or not grads:
        return
    flat = _flatten_dense_tensors(grads).div_(n)
    dist.all_reduce(flat)
    for grad, average in zip(grads, _unflatten_dense_tensors(flat, grads)):
        grad.copy_(average)


def sum_over_processes(tensor: Tensor) -> Tensor:
    """`tensor` summed over the processes (a new tensor; on the device, nothing waits on the host)."""
    if world_size() == 1:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total
