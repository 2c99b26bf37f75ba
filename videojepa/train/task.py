"""What the trainer asks of the model it trains (its *task*): a pretraining method, or a fine-tuning classifier.

The trainer feeds `model(*entries)` with the entries of a loader batch that the task names, each cut into
accumulation micro-batches along its first axis, and knows nothing else about them. A task may define:

- `batch_keys`: the batch entries its forward takes, in order (default `("video", "masks")`);
- `training_data(cfg)`: `(dataset, collate_fn)` for the training loader; batch-level augmentation (masks,
  mixup) lives in the collate function (default: `data.train` with the data section's augmentation, and a
  `MaskCollator` over the config's mask generators);
- `build_optimizer(train_cfg)`: its optimiser (default: AdamW over `trainable_parameters()` with V-JEPA's
  weight-decay groups); a parameter group may carry `lr_scale` (layer-wise decay), see `optim`;
- `flops_per_clip()`: (training FLOPs per clip, the same with attention) for the FLOP/s report (default: the
  FLOPs accountant's per-step count of the pretraining config, divided by the batch).

Pretraining methods (`videojepa.methods`) define none of these, so they train exactly as before.
"""
from __future__ import annotations

import torch

from videojepa.errors import UserError
from videojepa.masks import MaskCollator, MaskIndices, build_mask_generators
from videojepa.train.optim import build_optimizer

PRETRAINING_KEYS = ("video", "masks")


def batch_keys(task) -> tuple[str, ...]:
    return tuple(getattr(task, "batch_keys", PRETRAINING_KEYS))


def training_data(task, cfg):
    """(dataset, collate_fn) of the training loader."""
    if hasattr(task, "training_data"):
        return task.training_data(cfg)
    from videojepa.data.datasets import build_dataset

    # uint8 items: the trainer flips and normalises them on the training device (Trainer.video_to_device)
    return build_dataset(cfg.data.train, cfg.data, train=True, uint8=True), MaskCollator(
        build_mask_generators(cfg), seed=cfg.run.seed)


def task_optimizer(task, train_cfg) -> torch.optim.Optimizer:
    if hasattr(task, "build_optimizer"):
        return task.build_optimizer(train_cfg)
    return build_optimizer(task.trainable_parameters(), train_cfg)


def task_flops_per_clip(task, cfg) -> tuple[float, float]:
    """Training FLOPs per clip by the paper's rule and with attention; NaN when they cannot be counted."""
    if hasattr(task, "flops_per_clip"):
        return task.flops_per_clip()
    from videojepa.flops import stage_flops

    flops = stage_flops(cfg, measured_masks=True)  # UserError: the caller reports it and trains on
    batch = cfg.train.batch_size
    return flops["flops_per_step"] / batch, flops["flops_per_step_with_attention"] / batch


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
