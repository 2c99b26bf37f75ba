"""Multi-clip x multi-view evaluation, as in V-JEPA.

A video gives K clips (temporal segments) x V views (spatial crops). Their features arrive as
(B, K*V, N, D) tokens or (B, K*V, D) mean-pooled, clip-major like the dataset orders clips
(element k*V + v is view v of clip k).

- Per view, the K clips' tokens are concatenated along the token axis -> (B*V, K*N, D); pooled
  features are averaged over the clips, which equals mean-pooling the concatenated tokens.
- Training: every view is one sample carrying its video's label (so the loss averages over views).
- Test: the probe scores every view and the LOGITS are averaged over views -> (B, num_classes).
Images are still clips (the dataset repeats the frame), so they go through the same path with K = V = 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def per_view(features: torch.Tensor, num_clips: int, num_views: int) -> torch.Tensor:
    """(B, K*V, N, D) -> (B*V, K*N, D), or pooled (B, K*V, D) -> (B*V, D); rows ordered (video, view)."""
    B, S = features.shape[:2]
    if num_clips * num_views != S:
        raise ValueError(f"expected {num_clips} clips x {num_views} views = {num_clips * num_views} per video, got {S}")
    x = features.view(B, num_clips, num_views, *features.shape[2:]).transpose(1, 2)  # (B, V, K, ...)
    if features.ndim == 3:
        return x.mean(2).reshape(B * num_views, -1)
    return x.reshape(B * num_views, num_clips * features.shape[2], features.shape[3])


def training_batch(features: torch.Tensor, labels: torch.Tensor, num_clips: int, num_views: int):
    """Probe inputs and targets for training: one sample per view."""
    return per_view(features, num_clips, num_views), labels.repeat_interleave(num_views)


def eval_logits(
    probe: Callable[[torch.Tensor], torch.Tensor], features: torch.Tensor, num_clips: int, num_views: int
) -> torch.Tensor:
    """(..., B, num_classes): the probe's logits for each view, averaged over views.

    The probe may add leading axes (a probe grid returns (cells, B*V, num_classes)).
    """
    logits = probe(per_view(features, num_clips, num_views))
    return logits.unflatten(-2, (features.shape[0], num_views)).mean(-2)
