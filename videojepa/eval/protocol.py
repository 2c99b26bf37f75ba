"""Multi-clip x multi-view evaluation, as in V-JEPA.

A video gives K clips (temporal segments) x V views (spatial crops). Their features arrive as
(B, K*V, N, D) tokens or (B, K*V, D) mean-pooled, clip-major like the dataset orders clips
(element k*V + v is view v of clip k).

- Per view, the K clips' tokens are concatenated along the token axis -> (B*V, K*N, D); pooled
  features are averaged over the clips, which equals mean-pooling the concatenated tokens.
- Training: every view is one sample carrying its video's label (so the loss averages over views).
- Test: the probe scores every view and the views are combined -> (B, num_classes): their softmax
  probabilities averaged (`average="softmax"`, returned as log-probabilities, V-JEPA's and V-JEPA 2's
  evaluation code: segments concatenated per view, softmax averaged over views only) or their logits
  averaged (`"logits"`, this project's earlier protocol). Either way the result ranks classes like logits.
- Test views (`with_test_views`): "official" resizes the short side to the crop when there are several
  views (which then span the long side) and to crop x 256/224 for one centre crop, as the official code's
  evaluation transforms do; "resized" keeps data.eval_resize_ratio for any number of views.
Images are still clips (the dataset repeats the frame), so they go through the same path with K = V = 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from videojepa.data.config import DataConfig

OFFICIAL_SINGLE_VIEW_RATIO = 256 / 224  # the official transforms' one centre crop: short side int(crop * 256 / 224)


def with_test_views(data: DataConfig, test_views: str) -> DataConfig:
    """The clip protocol with the short side of the test views set as `test_views` says (module docstring)."""
    if test_views == "resized":
        return data
    if test_views != "official":
        raise ValueError(f"test_views must be 'official' or 'resized', got {test_views!r}")
    ratio = 1.0 if data.num_views > 1 else OFFICIAL_SINGLE_VIEW_RATIO
    return data.model_copy(update={"eval_resize_ratio": ratio})


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
    probe: Callable[[torch.Tensor], torch.Tensor],
    features: torch.Tensor,
    num_clips: int,
    num_views: int,
    average: str = "logits",
) -> torch.Tensor:
    """(..., B, num_classes): the probe's scores of each view combined over views: logits averaged, or with
    `average="softmax"` the log of the averaged softmax probabilities.

    The probe may add leading axes (a probe grid returns (cells, B*V, num_classes)).
    """
    logits = probe(per_view(features, num_clips, num_views)).unflatten(-2, (features.shape[0], num_views))
    if average == "softmax":
        return logits.float().softmax(-1).mean(-2).clamp_min(torch.finfo(torch.float32).tiny).log()
    if average != "logits":
        raise ValueError(f"average must be 'logits' or 'softmax', got {average!r}")
    return logits.mean(-2)
