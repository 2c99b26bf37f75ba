"""Pretraining: the method-agnostic loop (`trainer`) and its parts.

    from videojepa.train import Trainer
    Trainer(load_config("my_run.yaml")).fit()     # `videojepa pretrain CONFIG`

`checkpoint` (atomic, rotated checkpoints that resume exactly), `distributed` (torchrun),
`logger` (metrics.jsonl), `monitors` (collapse monitors: RankMe, feature std); the optimiser and its
schedules are `videojepa.optim`.

The names below are imported on first use: the methods import parts of this package, and the trainer
imports the methods, so importing them all here would make `import videojepa.methods` circular.
"""

from __future__ import annotations

import importlib

# public name -> the module that defines it
_EXPORTS = {
    "Trainer": "trainer",
    "TrainingError": "trainer",
    "save_checkpoint": "checkpoint",
    "load_latest": "checkpoint",
    "list_checkpoints": "checkpoint",
    "DistInfo": "distributed",
    "init_distributed": "distributed",
    "MetricsWriter": "logger",
    "read_metrics": "logger",
    "CollapseWatch": "monitors",
    "rankme": "monitors",
    "build_optimizer": "videojepa.optim.adamw",
    "learning_rate": "videojepa.optim.schedules",
    "weight_decay": "videojepa.optim.schedules",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'videojepa.train' has no attribute {name!r}")
    module = _EXPORTS[name]
    return getattr(importlib.import_module(module if "." in module else f"videojepa.train.{module}"), name)
