"""The optimiser and its schedules: a leaf that imports nothing else of the package.

`adamw` (AdamW with V-JEPA's parameter groups, the per-step hyper-parameters) and `schedules` (learning rate,
weight decay and any linear ramp as pure functions of the step), used by the methods (V-JEPA's EMA momentum,
the default optimiser) and the trainer. Their `train` argument is the config's `train` section
(`videojepa.config.schema.TrainConfig`), read by attribute.
"""

from videojepa.optim.adamw import build_optimizer, set_hyperparameters
from videojepa.optim.schedules import horizon, learning_rate, linear, weight_decay

__all__ = ["build_optimizer", "set_hyperparameters", "horizon", "learning_rate", "linear", "weight_decay"]
