"""Low-shot probing: class-balanced fractions of a training set, over several random splits.

    rows = balanced_subset(labels, fraction=0.1, seed=split_seed(0, k))   # sorted indices into the training list
    mean, std = mean_std([0.61, 0.63, 0.60])

A split keeps, from each class of n training videos, ceil(fraction x n) of them (at least one, so that every
class stays represented), drawn without replacement. Split k of a run seeded s draws from seed (s, k): splits
differ from one another and a rerun gives the same ones. `videojepa probe` with features.train_fraction and
features.splits trains every probe of the grid on each split and reports the mean and standard deviation of
top-1 over the splits; the encoder's features of the whole training list are computed once (cached) and each split
reads its rows, while a streamed run (features.cache=false) streams each split's videos, and the validation
set, once per split.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence

import numpy as np


def split_seed(seed: int, split: int) -> int:
    """The seed of split `split` of a run seeded `seed`."""
    return int(np.random.SeedSequence([seed, split]).generate_state(1)[0])


def per_class_count(n: int, fraction: float) -> int:
    """ceil(fraction x n), at least 1 (the product rounded first: 0.1 x 30 is 3, not 3.0000000000000004 -> 4)."""
    return max(1, math.ceil(round(fraction * n, 9)))


def balanced_subset(labels: Sequence[int], fraction: float, seed: int) -> list[int]:
    """Sorted indices of a class-balanced random subset of `labels` (module docstring)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[int(label)].append(i)
    chosen = []
    for label in sorted(by_class):
        members = by_class[label]
        chosen += rng.choice(members, size=per_class_count(len(members), fraction), replace=False).tolist()
    return sorted(chosen)


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None
