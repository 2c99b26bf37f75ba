"""Random erasing for clips (the paper's `prob 0.25, mode pixel, count 1`): one box, the same in every frame.

    clip = random_erase(clip, prob=0.25, rng=rng)     # clip: normalised float C x T x H x W

With probability `prob`, a box of area fraction in [0.02, 1/3] and log-uniform aspect ratio in
[0.3, 1/0.3] (up to 10 tries to fit it in the frame) is filled with standard-normal noise, fresh per
pixel, channel and frame (the clip is already normalised, so noise has the data's scale).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def erase_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    area: tuple[float, float] = (0.02, 1 / 3),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
) -> tuple[int, int, int, int] | None:
    """(top, left, h, w) of a random box, or None when 10 tries found none that fits."""
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = height * width * rng.uniform(*area)
        aspect = math.exp(rng.uniform(*log_ratio))
        h, w = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < h < height and 0 < w < width:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return None


def random_erase(clip: torch.Tensor, prob: float, rng: np.random.Generator) -> torch.Tensor:
    """The clip (C, T, H, W) with one box erased in every frame, with probability `prob` (else unchanged)."""
    if prob <= 0 or rng.random() >= prob:
        return clip
    box = erase_box(clip.shape[-2], clip.shape[-1], rng)
    if box is None:
        return clip
    top, left, h, w = box
    clip = clip.clone()
    noise = rng.standard_normal((*clip.shape[:-2], h, w)).astype(np.float32)
    clip[..., top : top + h, left : left + w] = torch.from_numpy(noise).to(clip.dtype)
    return clip
