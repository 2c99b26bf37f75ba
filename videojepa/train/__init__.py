"""Pretraining: the method-agnostic loop (`trainer`) and its parts.

    from videojepa.train import Trainer
    Trainer(load_config("my_run.yaml")).fit()     # `videojepa pretrain CONFIG`

`checkpoint` (atomic, rotated checkpoints that resume exactly), `distributed` (torchrun),
`logger` (metrics.jsonl), `monitors` (collapse monitors: RankMe, feature std); the optimiser and its
schedules are `videojepa.optim`.
"""

from videojepa.optim.adamw import build_optimizer
from videojepa.optim.schedules import learning_rate, weight_decay
from videojepa.train.checkpoint import list_checkpoints, load_latest, save_checkpoint
from videojepa.train.distributed import DistInfo, init_distributed
from videojepa.train.logger import MetricsWriter, read_metrics
from videojepa.train.monitors import CollapseWatch, rankme
from videojepa.train.trainer import Trainer, TrainingError

__all__ = [
    "CollapseWatch",
    "DistInfo",
    "MetricsWriter",
    "Trainer",
    "TrainingError",
    "build_optimizer",
    "init_distributed",
    "learning_rate",
    "list_checkpoints",
    "load_latest",
    "rankme",
    "read_metrics",
    "save_checkpoint",
    "weight_decay",
]
