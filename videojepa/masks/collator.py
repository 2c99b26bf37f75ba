"""Collate clips and attach mask index tensors for every mask generator.

    collate = MaskCollator(generators, seed=0)
    batch = collate(samples)   # batch["masks"][g].context: (B, Nc) ids, .target: (B, Nt) ids

Within a batch every sample keeps the same number of context (and of target) tokens so
they stack: longer lists are cut to the batch's shortest by dropping a uniformly random
subset (V-JEPA keeps the first ids instead, which biases toward early frames and top rows).
Masks are a pure function of (seed, the batch's sample indices), so they are identical
across DataLoader workers, restarts and resumed runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import default_collate


class MaskIndices(NamedTuple):
    context: torch.Tensor  # (B, Nc) token ids seen by the encoder, ascending
    target: torch.Tensor  # (B, Nt) token ids to predict, ascending


def equal_length_ids(keep: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Boolean (B, N) -> ascending ids (B, L), L = fewest True in any row; random subset if more."""
    length = int(keep.sum(dim=1).min())
    scores = torch.rand(keep.shape, generator=generator).masked_fill(~keep, 2.0)
    return scores.argsort(dim=1)[:, :length].sort(dim=1).values


def masks_to_indices(masked: torch.Tensor, generator: torch.Generator) -> MaskIndices:
    flat = masked.flatten(1)
    return MaskIndices(equal_length_ids(~flat, generator), equal_length_ids(flat, generator))


def batch_seed(seed: int, indices: Sequence[int]) -> int:
    return int(np.random.SeedSequence([seed, *map(int, indices)]).generate_state(1, dtype=np.uint64)[0] >> 1)


class MaskCollator:
    def __init__(self, generators: Sequence, seed: int = 0, collate_fn=default_collate):
        self.generators, self.seed, self.collate_fn = list(generators), seed, collate_fn
        self._calls = 0

    def sample(self, batch_size: int, seed: int) -> list[MaskIndices]:
        generator = torch.Generator().manual_seed(seed)
        return [masks_to_indices(g.sample(batch_size, generator), generator) for g in self.generators]

    def __call__(self, samples: list) -> dict:
        batch = self.collate_fn(samples)
        if not isinstance(batch, dict):
            batch = {"video": batch}
        if "index" in batch:
            key = batch_seed(self.seed, batch["index"].tolist())
        else:  # no sample ids: fall back to a per-collator counter
            key, self._calls = batch_seed(self.seed, [self._calls]), self._calls + 1
        batch["masks"] = self.sample(len(samples), key)
        return batch
