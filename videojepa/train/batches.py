"""Batch entries as the trainer handles them, whatever they hold: moved to the device, cut into micro-batches.

The trainer feeds `model(*entries)` with the loader batch entries the model names (`Method.batch_keys`:
video and masks for pretraining, video and soft targets for fine-tuning), each cut into accumulation
micro-batches along its first axis, and knows nothing else about them.
"""

from __future__ import annotations

import torch

from videojepa.errors import UserError
from videojepa.masks import MaskIndices


def to_device(value, device: torch.device):
    """A batch entry on `device`: tensors, and lists or (named) tuples of them such as `MaskIndices`."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, MaskIndices) or (isinstance(value, tuple) and hasattr(value, "_fields")):
        return type(value)(*(to_device(v, device) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    raise UserError(f"cannot move a batch entry of type {type(value).__name__} to {device}")


def take_rows(value, rows: slice):
    """Rows `rows` (first axis) of a batch entry: a tensor, or every tensor of a list or (named) tuple."""
    if isinstance(value, torch.Tensor):
        return value[rows]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(take_rows(v, rows) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(take_rows(v, rows) for v in value)
    raise TypeError(f"cannot split a batch entry of type {type(value).__name__}")


def split_entries(entries: tuple, parts: int, rows: int):
    """`parts` micro-batches of equal size from batch entries with `rows` rows each."""
    size = rows // parts
    for i in range(parts):
        yield tuple(take_rows(e, slice(i * size, (i + 1) * size)) for e in entries)
