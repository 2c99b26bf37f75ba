"""Mask statistics over many sampled batches (what `videojepa masks --json` prints)."""

from __future__ import annotations

import math

import torch

from videojepa.masks.collator import batch_seed, masks_to_indices


def mask_statistics(generators: list, batch_size: int, num_batches: int, seed: int = 0) -> list[dict]:
    """Per generator: masking ratio (before the batch's equal-length cut) and its spread
    between batches, and the context/target lengths the encoder and predictor receive."""
    tokens = math.prod(generators[0].grid)
    out = []
    for gen in generators:
        gen.resampled = 0
        ratios, contexts, targets = [], [], []
        for index in range(num_batches):
            generator = torch.Generator().manual_seed(batch_seed(seed, [index]))
            masked = gen.sample(batch_size, generator)
            pair = masks_to_indices(masked, generator)
            ratios.append(masked.flatten(1).double().mean().item())
            contexts.append(pair.context.shape[1])
            targets.append(pair.target.shape[1])
        r = torch.tensor(ratios, dtype=torch.float64)
        out.append(
            {
                "tokens": tokens,
                "mask_ratio": r.mean().item(),
                "mask_ratio_batch_std": r.std().item() if num_batches > 1 else 0.0,
                "context_tokens": sum(contexts) / num_batches,
                "target_tokens": sum(targets) / num_batches,
                "min_context_tokens": min(contexts),
                "resampled_fraction": gen.resampled / (num_batches * batch_size),
            }
        )
    return out
