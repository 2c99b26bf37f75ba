"""What a config's data source becomes: `build_dataset` (one list or folder, or a weighted mixture of them).

It sits above the datasets (`datasets`) and the mixtures (`mixture`): a mixture is built from one dataset per
source, so neither of those modules needs the other's builder.
"""

from __future__ import annotations

import os
from typing import Literal

from videojepa.data.config import DataConfig, DataSource
from videojepa.data.datasets import VideoDataset, read_entries
from videojepa.data.manifest import Manifest
from videojepa.data.mixture import MixtureDataset
from videojepa.errors import UserError


def build_dataset(
    path,
    data_cfg: DataConfig,
    train: bool,
    key: str | None = None,
    on_bad: Literal["replace", "exclude"] = "replace",
    uint8: bool = False,
) -> VideoDataset:
    """The dataset at `path` (CSV/list file or folder; or a list of sources, see `mixture`) with training or
    evaluation sampling and augmentation.

    `key` names the config key `path` came from in error messages (default data.train / data.val);
    `on_bad`: see the module docstring; `uint8`: items carry uint8 clips and their flips, for
    `transforms.normalize_clips` on the training device.
    """
    key = key or f"data.{'train' if train else 'val'}"
    if isinstance(path, (list, tuple)):  # a weighted mixture of sources (data.train as a list)
        return build_mixture(list(path), data_cfg, train, uint8=uint8)
    if not path:
        raise UserError(f"{key} is not set: give a CSV file or a folder")
    if not os.path.exists(os.path.expanduser(str(path))):
        raise UserError(f"{key}: data source not found: {path} (a CSV/list file, a folder of videos or one video)")
    entries, classes = read_entries(path)
    return VideoDataset(
        entries,
        data_cfg,
        train,
        classes=classes,
        source=str(path),
        on_bad=on_bad,
        manifest=Manifest.find(path),
        uint8=uint8,
    )


def build_mixture(sources: list, data_cfg: DataConfig, train: bool, uint8: bool = False) -> MixtureDataset:
    """A MixtureDataset of `sources` (DataSource, {path, weight} dicts, or paths of weight 1)."""
    if not sources:
        raise UserError("data.train: an empty list of sources; give a path or a list of {path, weight}")
    specs = [
        s if isinstance(s, DataSource) else DataSource(path=s) if isinstance(s, str) else DataSource(**s)
        for s in sources
    ]
    datasets = [build_dataset(s.path, data_cfg, train, uint8=uint8) for s in specs]
    return MixtureDataset(datasets, [s.weight for s in specs])
