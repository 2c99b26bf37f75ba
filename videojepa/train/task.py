"""What the trainer trains: the `TrainingTask` protocol, which a pretraining method (`videojepa.methods.Method`)
and the fine-tuning classifier (`videojepa.finetune.model.Classification`) both implement.

The trainer knows nothing else of them: it feeds `task(*entries)` (the loader batch entries `batch_keys` names,
each cut into accumulation micro-batches) and backpropagates the loss it returns. A task is an `nn.Module`
made of networks with roles (`videojepa.models.roles.NetworkRoles`: `networks`, `ema_of`,
`trainable_parameters()`, `modules_with_role()`), which the parallel wrapper shards or replicates by role.
The accounting hooks a method has besides (`flops_components`, `meta_networks`, `target_architecture`,
`check_config`) are not the trainer's: `videojepa.methods.accounting` and `videojepa.memory` use them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class TrainingTask(Protocol):
    name: str  # in checkpoints' encoder cards and the progress bar
    networks: dict[str, str]  # attribute -> role: trained, ema, frozen
    ema_of: dict[str, str]  # EMA network -> the trained network it follows
    batch_keys: tuple[str, ...]  # the loader batch entries its forward takes, in order

    def __call__(self, *entries) -> tuple[torch.Tensor, dict]:
        """(loss, metrics) of one micro-batch."""

    def training_data(self, cfg) -> tuple[torch.utils.data.Dataset, object]:
        """(dataset, collate_fn) of the training loader."""

    def build_optimizer(self, train_cfg) -> torch.optim.Optimizer:
        """Its optimiser over its trained parameters (hyper-parameters from the `train` section)."""

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]: ...

    def modules_with_role(self, *roles: str) -> list[nn.Module]: ...

    def shard_frozen(self, cfg) -> bool:
        """Under FSDP2, shard its frozen networks too (else they are replicated)."""

    def after_step(self, step: int) -> dict:
        """Called after every applied optimiser step (V-JEPA's EMA update); metrics to log."""

    def export_encoder(self) -> nn.Module:
        """The network saved as RUN/encoder.safetensors."""

    def health_encoder(self) -> nn.Module:
        """The network whose features the collapse monitors watch."""

    def flops_per_clip(self, cfg) -> tuple[float, float]:
        """Training FLOPs per clip (paper's rule, with attention), for the achieved FLOP/s report; UserError
        when not countable."""
