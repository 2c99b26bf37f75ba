"""Clip augmentation in plain torch (no torchvision).

Input: decoded frames, uint8 T×H×W×3. Output: normalised float32 views V×C×T×S×S (S = crop size).
Every spatial operation is shared by all frames of a clip, so motion is never distorted.

Training (per view): random resized crop (area fraction from `scale`, aspect ratio log-uniform in `ratio`,
torchvision's algorithm), resize to S×S, horizontal flip with probability 1/2.
Evaluation: resize the short side to round(S * eval_resize_ratio), then take S×S crops: the centre crop
for one view, or `num_views` crops evenly spaced along the long side (3 = left/centre/right or
top/centre/bottom, as in V-JEPA's multi-view evaluation).
Both: scale to [0, 1] and normalise with the per-channel mean and std.

For training at scale the float work moves to the accelerator: `views()` stops before the flip and the
normalisation and returns uint8 views with each view's flip decision (4x fewer bytes between processes and
to the device); `device.normalize_clips` then flips and normalises there. It draws the same random numbers,
so `views()` + `normalize_clips` equals `__call__` exactly.

Resizing runs on uint8 in channels-last layout (torch's fast antialiased bilinear path) and the C×T×H×W
transpose on uint8 too; only the final normalisation touches float32.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def random_resized_crop_box(
    height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float], rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop covering `scale` of the area with aspect ratio (w/h) in `ratio`."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    # Fallback: the largest centred crop whose aspect ratio is within range.
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif aspect > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def resize(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 T×H×W×3 frames to size (h, w); returns uint8 T×h×w×3."""
    if tuple(frames.shape[1:3]) == tuple(size):
        return frames
    x = frames.permute(0, 3, 1, 2)  # a channels-last view: no copy
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1)


def resize_short_side(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 T×H×W×3 frames so that the shorter side is `size`, keeping the aspect ratio."""
    h, w = frames.shape[1:3]
    if h <= w:
        return resize(frames, (size, max(size, int(round(w * size / h)))))
    return resize(frames, (max(size, int(round(h * size / w))), size))


def view_offsets(length: int, crop: int, num_views: int) -> list[int]:
    """Start positions of `num_views` crops evenly spaced along a side of `length` (centre when one)."""
    if num_views == 1:
        return [(length - crop) // 2]
    return [int(round(x)) for x in np.linspace(0, length - crop, num_views)]


def normalization_constants(mean, std) -> tuple[list[float], list[float]]:
    """(shift, scale) with (x/255 - mean)/std == (x - shift) * scale: the /255 folded in."""
    return [255.0 * m for m in mean], [1.0 / (255.0 * s) for s in std]


def normalize_clips(video: torch.Tensor, flip: torch.Tensor, shift: list[float], scale: list[float]) -> torch.Tensor:
    """uint8 …×C×T×H×W clips → float32, flipped horizontally where `flip` (shape …) is set, normalised.

    Runs where `video` is (in the workers, or on the training device); the same code on both sides, so the
    results are equal bit for bit.
    """
    x = video.to(torch.float32)
    flip = flip.to(x.device)
    if x.device.type != "cpu" or bool(flip.any()):  # reading flip.any() would sync an accelerator
        x = torch.where(flip.reshape(*flip.shape, 1, 1, 1, 1), x.flip(-1), x)
    for c in range(x.shape[-4]):  # in place, one channel at a time: ~7x faster than broadcasting on CPU
        x.select(-4, c).sub_(shift[c]).mul_(scale[c])
    return x


class ClipTransform:
    """Frames (uint8 T×H×W×3) → normalised views (float V×C×T×S×S); see the module docstring."""

    def __init__(
        self,
        crop_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train: bool,
        num_views: int = 1,
        scale: tuple[float, float] = (0.3, 1.0),
        ratio: tuple[float, float] = (0.75, 1.35),
        flip: bool = True,
        eval_resize_ratio: float = 256 / 224,
    ):
        self.crop_size, self.train, self.num_views = crop_size, train, num_views
        self.scale, self.ratio, self.flip, self.eval_resize_ratio = scale, ratio, flip, eval_resize_ratio
        # Fold the /255 into the normalisation: (x/255 - m)/s == (x - 255m) / (255s).
        self.norm_shift, self.norm_scale = normalization_constants(mean, std)

    @classmethod
    def from_config(cls, cfg, train: bool) -> ClipTransform:
        return cls(
            cfg.crop_size,
            cfg.mean,
            cfg.std,
            train,
            num_views=cfg.num_views,
            scale=cfg.random_resize_scale,
            ratio=cfg.random_resize_aspect_ratio,
            flip=cfg.horizontal_flip,
            eval_resize_ratio=cfg.eval_resize_ratio,
        )

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 T×H×W×C → float C×T×H×W, normalised."""
        x = frames.permute(3, 0, 1, 2).contiguous().to(torch.float32)  # transpose while still 1 byte per value
        for c in range(x.shape[0]):  # in place, one channel at a time: ~7x faster than broadcasting
            x[c].sub_(self.norm_shift[c]).mul_(self.norm_scale[c])
        return x

    def __call__(self, frames: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        views, flips = self.views(frames, rng)
        return normalize_clips(views, flips, self.norm_shift, self.norm_scale)

    def views(self, frames: torch.Tensor, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 views V×C×T×S×S before flip and normalisation, and whether to flip each (bool V)."""
        if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames T×H×W×3, got {frames.dtype} {tuple(frames.shape)}")
        s = self.crop_size
        views, flips = [], []
        if self.train:
            if rng is None:
                raise ValueError("training augmentation needs a random generator")
            h, w = frames.shape[1:3]
            for _ in range(self.num_views):
                top, left, ch, cw = random_resized_crop_box(h, w, self.scale, self.ratio, rng)
                views.append(resize(frames[:, top : top + ch, left : left + cw], (s, s)))
                flips.append(bool(self.flip and rng.random() < 0.5))
        else:
            frames = resize_short_side(frames, max(s, int(round(s * self.eval_resize_ratio))))
            h, w = frames.shape[1:3]
            tops = view_offsets(h, s, self.num_views) if h > w else [(h - s) // 2] * self.num_views
            lefts = view_offsets(w, s, self.num_views) if h <= w else [(w - s) // 2] * self.num_views
            for top, left in zip(tops, lefts):
                views.append(frames[:, top : top + s, left : left + s])
                flips.append(False)
        # C×T×S×S per view, transposed while still 1 byte per value
        return torch.stack([v.permute(3, 0, 1, 2) for v in views]).contiguous(), torch.tensor(flips)
