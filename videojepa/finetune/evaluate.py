"""Scoring a classifier on labelled videos with the multi-view test (segments x crops, logits averaged).

    logits = multiview_logits(model.logits, video)     # video (B, S, C, T, H, W) -> (B, classes), mean over S
    scores = evaluate(model.logits, dataset, batch_size=8, num_classes=4)   # top1, top5, confusion, ...

A test video gives S = num_segments x num_crops clips (the dataset's num_clips x num_views); the
classifier scores each clip on its own and the S logits are averaged. This differs from the probes'
protocol (`videojepa.eval.protocol`), which concatenates a view's segments into one token sequence for
the attentive probe: a fine-tuned classifier is trained on single clips, so it scores single clips.
Unreadable validation files are excluded from the score and counted.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from videojepa.data.loader import build_loader
from videojepa.eval.encoders import accuracy


def multiview_logits(classify: Callable[[torch.Tensor], torch.Tensor], video: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> classify(video); (B, S, C, T, H, W) -> classify on all B*S clips, averaged over S."""
    if video.ndim == 5:
        return classify(video).float()
    if video.ndim != 6:
        raise ValueError(f"expected clips (B, C, T, H, W) or views (B, S, C, T, H, W), got {tuple(video.shape)}")
    logits = classify(video.flatten(0, 1)).float()
    return logits.unflatten(0, video.shape[:2]).mean(1)


@torch.no_grad()
def evaluate(
    classify: Callable[[torch.Tensor], torch.Tensor],
    dataset,
    batch_size: int,
    num_classes: int,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
) -> dict:
    """top1, top5 (None for 5 classes or fewer), confusion (true x predicted counts), num_val, excluded."""
    loader = build_loader(dataset, batch_size, dataset.cfg, seed=0, drop_last=False, shuffle=False)
    device = torch.device(device)
    all_logits, all_labels, excluded = [], [], 0
    for batch in loader:
        keep = batch["index"] >= 0
        excluded += int((~keep).sum())
        if not keep.any():
            continue
        video = batch["video"][keep].to(device)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            all_logits.append(multiview_logits(classify, video).cpu())
        all_labels.append(batch["label"][keep])
    if not all_logits:
        raise ValueError("no readable validation video to score")
    logits, labels = torch.cat(all_logits), torch.cat(all_labels).long()
    predictions = logits.argmax(-1)
    confusion = torch.bincount(labels * num_classes + predictions, minlength=num_classes**2).view(num_classes, -1)
    return {
        "top1": float(accuracy(logits, labels, 1)),
        "top5": float(accuracy(logits, labels, 5)) if num_classes > 5 else None,
        "confusion": confusion.tolist(),
        "num_val": len(labels),
        "excluded": excluded,
    }
