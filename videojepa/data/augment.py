"""Augmentation after the crop and flip: RandAugment (or AutoAugment) and random erasing on normalised clips.

    augment = ClipAugment(mean, std, randaugment_n=4, randaugment_m=7.0, erase_prob=0.25)
    clip = augment(clip, rng)            # one normalised clip (C, T, H, W) -> augmented, normalised
    video = augment.clips(video, rng)    # (C, T, H, W) or several clips (S, C, T, H, W), each its own draw
    dataset = AugmentedDataset(build_dataset(...), augment)   # a dataset's items, augmented


Per clip: RandAugment (`randaugment`: one plan for all frames of a clip), or AutoAugment's ImageNet policy
(`autoaugment`, `auto_augment=True`), on pixel values in [0, 1] (the
normalised clip is mapped back with `mean` / `std`, augmented and normalised again), then random erasing
(`erasing`: one box, the same in every frame). The official V-JEPA and VideoMAE pipelines apply
RandAugment to the whole frames before the random-resized crop; here it follows the crop (both apply one
transform to all frames of a clip). Fine-tuning (`videojepa.finetune.data`) and the probes' training
(`videojepa.eval`) use it. `AugmentedDataset` draws an item's augmentation from its sampler key (index, seed,
epoch), like the dataset's own crops, so a video gets fresh draws every epoch and the same ones on a rerun.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from videojepa.data.autoaugment import apply_autoaugment, draw_autoaugment
from videojepa.data.erasing import random_erase
from videojepa.data.randaugment import apply_plan, draw_plan


@dataclass(frozen=True)
class ClipAugment:
    """Per-clip augmentation after the base dataset's crop and flip."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    randaugment_n: int = 4
    randaugment_m: float = 7.0
    randaugment_mstd: float = 0.5
    erase_prob: float = 0.25
    auto_augment: bool = False  # AutoAugment's ImageNet policy (`autoaugment`) in place of RandAugment

    @property
    def active(self) -> bool:
        return self.randaugment_n > 0 or self.erase_prob > 0 or self.auto_augment

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """A normalised clip (C, T, H, W) -> the augmented, normalised clip."""
        if self.auto_augment:
            plan = draw_autoaugment(rng)
            if plan:
                clip = self.in_pixels(clip, lambda pixels: apply_autoaugment(pixels, plan))
        elif self.randaugment_n > 0:
            plan = draw_plan(rng, self.randaugment_n, self.randaugment_m, self.randaugment_mstd)
            if plan:
                clip = self.in_pixels(clip, lambda pixels: apply_plan(pixels, plan))
        return random_erase(clip, self.erase_prob, rng)

    def in_pixels(self, clip: torch.Tensor, op) -> torch.Tensor:
        """`op` applied to the clip's pixel values in [0, 1], the result normalised again."""
        mean = torch.tensor(self.mean, dtype=clip.dtype).view(-1, 1, 1, 1)
        std = torch.tensor(self.std, dtype=clip.dtype).view(-1, 1, 1, 1)
        return (op((clip * std + mean).clamp(0.0, 1.0)) - mean) / std

    def clips(self, video: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """One clip (C, T, H, W) or several (S, C, T, H, W, a dataset item's segments x views), each augmented
        with its own draws from `rng`."""
        if video.ndim == 4:
            return self(video, rng)
        return torch.stack([self(clip, rng) for clip in video])


class AugmentedDataset(torch.utils.data.Dataset):
    """The items of a `VideoDataset` with `augment` applied to their clips; every other attribute is the
    dataset's. An item's draws come from its key (index, seed, epoch) and the file it holds; an excluded
    (unreadable) item is passed through."""

    def __init__(self, base, augment: ClipAugment):
        self.base, self.augment = base, augment

    def __len__(self) -> int:
        return len(self.base)

    @property
    def train(self) -> bool:
        """Its items are random draws, like a training set's (never kept as fixed clips, shuffled by default)."""
        return True

    def __getattr__(self, name: str):
        if name == "base":  # not set yet (unpickling in a worker): no recursion
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, key) -> dict:
        item = self.base[key]
        if item["index"] < 0:
            return item
        if isinstance(key, (tuple, list)):
            _, seed, epoch = (int(k) for k in key)
        else:  # a plain index: randomness from torch's generator, as the base dataset does
            seed, epoch = int(torch.randint(0, 2**62, ()).item()), 0
        rng = np.random.default_rng([seed, epoch, int(item["index"]), 2])
        return {**item, "video": self.augment.clips(item["video"], rng)}
