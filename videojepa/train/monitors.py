"""Health monitors: is the representation collapsing?

RankMe (Garrido et al. 2023): the exponential of the entropy of the normalised singular values
of a (tokens x channels) feature matrix - the effective number of dimensions in use. Together
with the per-channel std it is measured on a FIXED held-out batch so values are comparable over
a run. A collapsing encoder drives both toward their minimum (std 0, rank 1).
"""
from __future__ import annotations

import logging

import torch

from videojepa.methods.losses import channel_std

log = logging.getLogger("videojepa.train")


def rankme(features: torch.Tensor, eps: float = 1e-7) -> float:
    """features (..., D) -> effective rank in [1, min(tokens, D)]."""
    z = features.detach().float().flatten(0, -2)
    s = torch.linalg.svdvals(z)
    if s.sum() <= eps * s.numel():  # all-zero features use no dimension at all
        return 0.0
    p = s / s.sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def feature_health(encoder: torch.nn.Module, video: torch.Tensor) -> dict:
    was_training = encoder.training
    encoder.eval()
    features = encoder(video)
    encoder.train(was_training)
    return {"feature_std": float(channel_std(features)), "feature_rank": rankme(features)}


class CollapseWatch:
    """Warns (once per episode) when std or rank fall below their thresholds."""

    def __init__(self, min_std: float, min_rank: float):
        self.min_std, self.min_rank = min_std, min_rank
        self.alarmed = False

    def check(self, step: int, health: dict) -> bool:
        low_std = health.get("feature_std", 1.0) < self.min_std or health.get("target_std", 1.0) < self.min_std
        low_rank = health.get("feature_rank", float("inf")) < self.min_rank
        collapsed = low_std or low_rank
        if collapsed and not self.alarmed:
            log.warning("step %d: representation collapse suspected: feature std %.4f, target std %.4f "
                        "(threshold %g), effective rank %.2f (threshold %g)", step, health.get("feature_std", float("nan")),
                        health.get("target_std", float("nan")), self.min_std, health.get("feature_rank", float("nan")),
                        self.min_rank)
        self.alarmed = collapsed
        return collapsed
