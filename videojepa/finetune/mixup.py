"""Batch-level label mixing for fine-tuning: label smoothing, mixup and cutmix in batch mode.

    target = smooth_one_hot(labels, num_classes, 0.1)                 # (B, classes), rows sum to 1
    video, target, info = mix_batch(video, target, MixSettings(...), rng)

Batch mode (the paper's `mixup_mode: batch`): one draw per batch. With probability `mix_prob` the batch is
mixed with itself reversed (row i with row B-1-i); with both mixup and cutmix on, cutmix is chosen with
probability `switch_prob`. lambda ~ Beta(a, a) of the chosen one. Mixup blends the pixels: lambda x_i +
(1 - lambda) x_(B-1-i). Cutmix pastes one box of the reversed batch, the same box in every frame, and
lambda becomes the area left uncovered (the box is clipped to the frame). Targets are mixed with the same
lambda. `rng` is a numpy Generator, so a batch's mixing is a function of its seed (exact resume).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MixSettings:
    mixup: float = 0.8  # Beta parameter; 0 = off
    cutmix: float = 1.0  # Beta parameter; 0 = off
    mix_prob: float = 1.0
    switch_prob: float = 0.5


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """(B,) int labels -> (B, num_classes) targets: 1 - smoothing + smoothing/C on the label, smoothing/C elsewhere."""
    off = smoothing / num_classes
    target = torch.full((labels.shape[0], num_classes), off)
    return target.scatter_(1, labels.long()[:, None], 1.0 - smoothing + off)


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a box of about (1 - lam) of the frame, centred at a uniform point and
    clipped to the frame."""
    cut = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    top, bottom = np.clip(cy - cut_h // 2, 0, height), np.clip(cy + cut_h // 2, 0, height)
    left, right = np.clip(cx - cut_w // 2, 0, width), np.clip(cx + cut_w // 2, 0, width)
    return int(top), int(bottom), int(left), int(right)


def mix_batch(
    video: torch.Tensor, target: torch.Tensor, settings: MixSettings, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Mix clips (B, C, T, H, W) and their targets (B, classes); returns both and {"mode", "lam"[, "box"]}."""
    s = settings
    if (s.mixup <= 0 and s.cutmix <= 0) or rng.random() >= s.mix_prob:
        return video, target, {"mode": "none", "lam": 1.0}
    use_cutmix = s.cutmix > 0 and (s.mixup <= 0 or rng.random() < s.switch_prob)
    lam = float(rng.beta(s.cutmix, s.cutmix) if use_cutmix else rng.beta(s.mixup, s.mixup))
    other = video.flip(0)
    info = {"mode": "cutmix" if use_cutmix else "mixup"}
    if use_cutmix:
        height, width = video.shape[-2:]
        top, bottom, left, right = cutmix_box(height, width, lam, rng)
        video = video.clone()
        video[..., top:bottom, left:right] = other[..., top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
        info["box"] = (top, bottom, left, right)
    else:
        video = video * lam + other * (1.0 - lam)
    info["lam"] = lam
    return video, target * lam + target.flip(0) * (1.0 - lam), info
