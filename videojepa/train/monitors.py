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


def singular_values(z: torch.Tensor) -> torch.Tensor:
    """Singular values of a (tokens x channels) matrix, in float64 on the CPU, descending.

    Taken as the square roots of the eigenvalues of the smaller Gram matrix (z^T z or z z^T), formed in
    float64 where z lives: one (D x D) product on the GPU and a symmetric eigensolver on a D x D CPU matrix,
    instead of an SVD of the whole (e.g. 12544 x 1024) matrix on the GPU at every log step. The eigensolver
    of a symmetric matrix always converges, also on the degenerate (collapsed) features RankMe is there to
    report; rounding can leave tiny negative eigenvalues, clamped to 0 (the guard).
    """
    z = z.double()
    gram = z.T @ z if z.shape[0] >= z.shape[1] else z @ z.T
    eigenvalues = torch.linalg.eigvalsh(gram.cpu())
    return eigenvalues.clamp(min=0).sqrt().flip(0)


def rankme(features: torch.Tensor, eps: float = 1e-7) -> float:
    """features (..., D) -> effective rank in [1, min(tokens, D)]; 0 for all-zero features, NaN for non-finite."""
    z = features.detach().float().flatten(0, -2)
    if not bool(torch.isfinite(z).all()):  # NaN features: the watch reads NaN as collapsed
        return float("nan")
    s = singular_values(z)
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
    """Warns (once per episode) when a watched signal falls below its threshold.

    Signals: `feature_std` and `feature_rank` (RankMe) of the evaluated encoder on the fixed held-out batch,
    which the trainer measures itself (`feature_health`) for every method, so the watch works whatever a
    method reports; and `target_std`, the per-channel std of the method's regression targets, when the
    method reports it (an EMA target collapses there first). A method that reports no `target_std` is
    watched on the held-out signals alone, which is logged once. A missing held-out signal is a bug, not a
    healthy value, and a non-finite value (NaN features) counts as collapsed.
    """

    REQUIRED = ("feature_std", "feature_rank")

    def __init__(self, min_std: float, min_rank: float):
        self.min_std, self.min_rank = min_std, min_rank
        self.alarmed = False
        self.told_no_target = False

    def check(self, step: int, health: dict) -> bool:
        missing = [k for k in self.REQUIRED if k not in health]
        if missing:
            raise ValueError(
                f"collapse watch: no {' or '.join(missing)} measured on the held-out batch (got "
                f"{sorted(health)}); it cannot tell a collapse from a healthy run without them"
            )
        if "target_std" not in health and not self.told_no_target:
            log.info(
                "collapse watch: the method reports no target_std; watching the held-out feature std and rank only"
            )
            self.told_no_target = True
        stds = {k: health[k] for k in ("feature_std", "target_std") if k in health}
        # `not x >= threshold`: NaN compares false both ways and must raise the alarm, not pass
        low_std = any(not value >= self.min_std for value in stds.values())
        low_rank = not health["feature_rank"] >= self.min_rank
        collapsed = low_std or low_rank
        if collapsed and not self.alarmed:
            log.warning(
                "step %d: representation collapse suspected: %s (threshold %g), effective rank %.2f (threshold %g)",
                step,
                ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in stds.items()),
                self.min_std,
                health["feature_rank"],
                self.min_rank,
            )
        self.alarmed = collapsed
        return collapsed
