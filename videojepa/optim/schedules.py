"""Schedules as pure functions of the step, so a resumed run needs only the step to continue.

V-JEPA's truncation: schedules are laid out over steps * schedule_scale and training stops at
`steps` (scale 1.25 stops the cosine at 80% of its length, before the LR reaches its floor).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the optimiser package is a leaf: the type is named, never imported at run time
    from videojepa.config.schema import TrainConfig


def horizon(train: TrainConfig) -> float:
    """The length the schedules are laid out over."""
    return train.steps * train.schedule_scale


def lr_batch_scale(train: TrainConfig) -> float:
    """The factor `train.lr_base_batch` applies to every learning rate (1 when unset)."""
    return train.batch_size / train.lr_base_batch if train.lr_base_batch else 1.0


def learning_rate(train: TrainConfig, step: int) -> float:
    """Linear warmup start_lr -> lr, then `train.lr_schedule`: cosine lr -> final_lr over the rest of the horizon,
    or wsd: constant lr, then linear to final_lr over the horizon's last `cooldown_steps`."""
    scale = lr_batch_scale(train)
    start, peak, final = train.start_lr * scale, train.lr * scale, train.final_lr * scale
    if step < train.warmup_steps:
        return start + (peak - start) * step / train.warmup_steps
    if train.lr_schedule == "wsd":
        cooldown_start = horizon(train) - train.cooldown_steps
        if train.cooldown_steps == 0 or step < cooldown_start:
            return peak
        return peak + (final - peak) * min((step - cooldown_start) / train.cooldown_steps, 1.0)
    span = max(horizon(train) - train.warmup_steps, 1.0)
    progress = min((step - train.warmup_steps) / span, 1.0)
    return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * progress))


def weight_decay(train: TrainConfig, step: int) -> float:
    """Cosine weight_decay -> final_weight_decay over the whole horizon."""
    progress = min(step / horizon(train), 1.0)
    return train.final_weight_decay + 0.5 * (train.weight_decay - train.final_weight_decay) * (
        1 + math.cos(math.pi * progress)
    )


def linear(start: float, end: float, train: TrainConfig, step: int) -> float:
    """start -> end linearly over the whole horizon (e.g. V-JEPA's EMA momentum)."""
    return start + (end - start) * min(step / horizon(train), 1.0)
