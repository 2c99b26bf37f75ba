"""Weighted mixtures of training sources (V-JEPA's VideoMix2M, V-JEPA 2's weighted dataset sampling).

    data:
      train: [{path: k400/train.csv, weight: 3}, {path: ssv2/train.csv, weight: 1}]

Per-epoch composition (`composition`): an epoch has N = the sum of the sources' sizes samples; source i
contributes exactly n_i = N · w_i / Σw of them, rounded by largest remainder (ties to the earlier source),
so the counts add up to N and are the same every epoch. Each source is read as an endless stream of its
files, reshuffled at every pass (pass p of source i is a permutation seeded by (seed, i, p)); epoch e takes
items [e · n_i, (e + 1) · n_i) of that stream, so every file of a source is used once before any is used
again, whatever its weight. The epoch's samples of all sources are then shuffled together (seeded by
(seed, epoch)). Everything is a function of (seed, epoch), so `MixtureSampler` resumes exactly like
`loader.ResumableSampler` (same padding and rank striding) and refuses a state saved with other sources
or weights.

Indices are global: source i's file j is index offset_i + j. Items are those of the source's
`VideoDataset` (bad files are replaced inside their own source, keeping the composition) plus "source": i.
"""

from __future__ import annotations

import numpy as np
import torch

from videojepa.data.datasets import VideoDataset
from videojepa.data.loader import ResumableSampler
from videojepa.errors import UserError


def composition(total: int, weights: list[float]) -> list[int]:
    """Samples of each source in an epoch of `total`: proportional to the weights, largest remainder."""
    w = np.asarray(weights, dtype=np.float64)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    remainders = exact - counts
    for i in sorted(range(len(w)), key=lambda i: (-remainders[i], i))[: total - int(counts.sum())]:
        counts[i] += 1
    return counts.tolist()


class MixtureDataset(torch.utils.data.Dataset):
    """Several VideoDatasets behind one global index, with their sampling weights."""

    def __init__(self, sources: list[VideoDataset], weights: list[float]):
        self.sources, self.weights = sources, [float(w) for w in weights]
        self.sizes = [len(s) for s in sources]
        self.offsets = np.cumsum([0] + self.sizes[:-1]).tolist()
        self.train = sources[0].train
        self.source = " + ".join(f"{s.source} (weight {w:g})" for s, w in zip(sources, self.weights))
        self.classes: list[str] = []  # sources keep their own labels

    def __len__(self) -> int:
        return sum(self.sizes)

    @property
    def num_bad(self) -> int:
        return sum(s.num_bad for s in self.sources)

    def locate(self, index: int) -> tuple[int, int]:
        """(source, index inside it) of a global index."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a mixture of {len(self)} files")
        source = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return source, index - self.offsets[source]

    def __getitem__(self, key) -> dict:
        index, rest = (int(key[0]), tuple(key[1:])) if isinstance(key, (tuple, list)) else (int(key), ())
        source, local = self.locate(index)
        item = self.sources[source][(local, *rest) if rest else local]
        return {**item, "index": self.offsets[source] + item["index"], "source": source}

    def make_sampler(
        self, shuffle: bool, seed: int, rank: int, world_size: int, drop_last: bool, batch_size: int | None = None
    ) -> MixtureSampler:
        return MixtureSampler(self.sizes, self.weights, shuffle, seed, rank, world_size, drop_last, batch_size)


class MixtureSampler(ResumableSampler):
    """A ResumableSampler whose epochs have the mixture's composition (see the module docstring)."""

    def __init__(
        self,
        sizes: list[int],
        weights: list[float],
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        batch_size: int | None = None,
    ):
        super().__init__(sum(sizes), shuffle, seed, rank, world_size, drop_last, batch_size)
        self.sizes, self.weights = list(sizes), [float(w) for w in weights]
        self.offsets = np.cumsum([0] + self.sizes[:-1]).tolist()
        self.counts = composition(self.size, self.weights)

    def _stream(self, source: int, start: int, count: int) -> np.ndarray:
        """Items [start, start + count) of source `source`'s endless stream of reshuffled passes."""
        size, out = self.sizes[source], []
        for p in range(start // size, (start + count - 1) // size + 1):
            order = np.random.default_rng([self.seed, source, p]).permutation(size) if self.shuffle else np.arange(size)
            lo, hi = max(start - p * size, 0), min(start + count - p * size, size)
            out.append(order[lo:hi])
        return np.concatenate(out) + self.offsets[source]

    def epoch_indices(self, epoch: int) -> list[int]:
        parts = [self._stream(i, epoch * n, n) for i, n in enumerate(self.counts) if n]
        indices = np.concatenate(parts)
        if self.shuffle:
            indices = indices[np.random.default_rng([self.seed, epoch, len(self.sizes)]).permutation(len(indices))]
        return indices.tolist()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "sizes": self.sizes, "weights": self.weights}

    def load_state_dict(self, state: dict) -> None:
        for key in ("sizes", "weights"):
            if state.get(key) != getattr(self, key):
                raise UserError(
                    f"cannot resume the data order: it was saved with source {key} {state.get(key)}, "
                    f"this run has {getattr(self, key)}"
                )
        super().load_state_dict(state)
