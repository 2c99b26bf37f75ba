"""Helpers that work the same on plain tensors and on FSDP2's DTensors."""

from __future__ import annotations

import torch


def local_tensors(params) -> list[torch.Tensor]:
    """Each parameter's local data: its shard under FSDP2, the tensor itself otherwise."""
    from torch.distributed.tensor import DTensor

    return [p.to_local() if isinstance(p, DTensor) else p for p in params]


def full_value(x: torch.Tensor) -> torch.Tensor:
    """A DTensor's full value (a collective), or the tensor itself."""
    from torch.distributed.tensor import DTensor

    return x.full_tensor() if isinstance(x, DTensor) else x
