"""Pretraining's data sources, checked before any work (no run directory is created when they fail).

Pretraining reads data.train (the clips it learns from) and data.val, which it uses ONLY for the
health monitors' fixed held-out batch (feature std and RankMe of the exported encoder on its first 8
clips). data.val may be unset: the held-out batch is then 8 un-augmented training clips, which the
trainer logs. A data.val that is set but does not exist is an error, never a silent fallback.
"""

from __future__ import annotations

import os

from videojepa.data.config import DataConfig
from videojepa.errors import ConfigError, UserError

HELD_OUT_CLIPS = 8


def _exists(path: str) -> bool:
    return os.path.exists(os.path.expanduser(path))


def check_data_sources(data: DataConfig) -> None:
    """Raise a one-line error naming data.train or data.val when pretraining cannot read them."""
    if not data.train:
        raise UserError(
            "data.train is not set: give a CSV or folder of videos, e.g. `videojepa data synth --out "
            "data/synth` then data.train=data/synth/motion/train.csv"
        )
    sources = [data.train] if isinstance(data.train, str) else [source.path for source in data.train]
    for i, path in enumerate(sources):
        if not _exists(path):
            where = "data.train" if isinstance(data.train, str) else f"data.train.{i}.path"
            raise ConfigError(
                where, f"data source not found: {path} (a CSV/list file, a folder of videos or one video)"
            )
    if data.val and not _exists(data.val):
        raise ConfigError(
            "data.val",
            f"data source not found: {data.val}. Pretraining uses data.val only for the "
            f"health monitors' held-out batch (feature std and RankMe on {HELD_OUT_CLIPS} clips); "
            f"give an existing CSV/folder, or data.val=null to measure them on un-augmented "
            f"training clips",
        )
