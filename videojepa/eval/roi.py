"""Region-of-interest features of a frozen encoder's token map: RoIAlign in plain torch, then a spatial max.

    feature_map = token_map(tokens, grid)                       # (B, C, H', W'): tokens averaged over time
    pooled = roi_features(feature_map[0], boxes, resolution=7)  # (K, C): one vector per box

`roi_align` follows torchvision's `roi_align` / detectron2's `ROIAlign` with `aligned=True` (what SlowFast's AVA
head uses): a box given in feature-map coordinates (`spatial_scale` times its input coordinates) is shifted by
-0.5 so that map cell (i, j) is the value at continuous point (i + 0.5, j + 0.5); the box is cut into
`resolution` x `resolution` bins, each bin averages a grid of sampling points placed at the centres of a regular
`sampling_ratio` x `sampling_ratio` subdivision of the bin (`sampling_ratio` 0: ceil(box size / resolution)
points per side, adaptive), and each point is read by bilinear interpolation with torchvision's border rule:
points more than one cell outside the map read 0, points within one cell of it are clamped onto the border.
`aligned=False` is the legacy rule (no shift, boxes at least one cell wide).

Bilinear sampling on a regular grid is separable, so a bin's average is `Ay @ map @ Ax^T` with per-box
interpolation matrices Ay (bins x H') and Ax (bins x W'): one small matrix product per box instead of a gather
per sampling point. `roi_features` then takes the maximum over the bins, as SlowFast's head does (MaxPool2d
over the RoIAlign output). For a box covering the whole map with `resolution` dividing its sides, every token
centre is sampled exactly once, so each bin is the mean of its block of tokens (`avg_pool2d`) and the bins'
mean is the spatial mean; at resolution 1 the pooled feature IS the spatial mean (tests/test_ava_roi.py).
"""

from __future__ import annotations

import math

import torch


def token_map(tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Encoder tokens (B, N, C) ordered (t, h, w) on the token `grid` (T', H', W') -> the map (B, C, H', W')
    averaged over time."""
    T, H, W = grid
    B, N, C = tokens.shape
    if N != T * H * W:
        raise ValueError(f"{N} tokens do not fill the token grid {T}x{H}x{W}")
    return tokens.reshape(B, T, H, W, C).mean(1).permute(0, 3, 1, 2)


def sampling_weights(start: float, size: float, bins: int, samples: int, length: int) -> torch.Tensor:
    """(bins, length) float64: row b averages the bilinear weights of `samples` points evenly spread inside bin b
    of the interval [start, start + size) over a line of `length` cells (torchvision's border rule)."""
    weights = torch.zeros(bins, length, dtype=torch.float64)
    if samples == 0:
        return weights
    bin_size = size / bins
    k = torch.arange(bins * samples, dtype=torch.float64)
    bin_index, sub = torch.div(k, samples, rounding_mode="floor"), k % samples
    points = start + bin_index * bin_size + (sub + 0.5) * bin_size / samples
    inside = (points >= -1.0) & (points <= length)
    points = points.clamp(min=0.0)
    low = points.floor().long()
    at_end = low >= length - 1
    low = torch.where(at_end, torch.full_like(low, length - 1), low)
    points = torch.where(at_end, low.to(points.dtype), points)
    high = torch.where(at_end, low, low + 1)
    frac = points - low
    rows = bin_index.long()
    scale = inside.to(torch.float64) / samples
    weights.index_put_((rows, low), (1 - frac) * scale, accumulate=True)
    weights.index_put_((rows, high), frac * scale, accumulate=True)
    return weights


def roi_align(
    feature_map: torch.Tensor,
    boxes: torch.Tensor,
    resolution: int = 7,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    aligned: bool = True,
) -> torch.Tensor:
    """RoIAlign of one map (C, H, W) over boxes (K, 4) = (x1, y1, x2, y2) in input coordinates (map coordinates
    = `spatial_scale` x input coordinates) -> (K, C, resolution, resolution). See the module docstring."""
    if feature_map.ndim != 3 or boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(
            f"expected a map (C, H, W) and boxes (K, 4), got {tuple(feature_map.shape)} and {tuple(boxes.shape)}"
        )
    C, H, W = feature_map.shape
    offset = 0.5 if aligned else 0.0
    ay, ax = [], []
    for x1, y1, x2, y2 in boxes.detach().double().cpu().tolist():
        x1, y1, x2, y2 = (v * spatial_scale - offset for v in (x1, y1, x2, y2))
        width, height = x2 - x1, y2 - y1
        if not aligned:  # the legacy rule: boxes at least one cell wide
            width, height = max(width, 1.0), max(height, 1.0)
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(height / resolution)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(width / resolution)
        ay.append(sampling_weights(y1, height, resolution, grid_h, H))
        ax.append(sampling_weights(x1, width, resolution, grid_w, W))
    if not ay:
        return feature_map.new_zeros(0, C, resolution, resolution)
    ay = torch.stack(ay).to(feature_map.device, feature_map.dtype)  # (K, r, H)
    ax = torch.stack(ax).to(feature_map.device, feature_map.dtype)  # (K, r, W)
    return torch.einsum("kyh,chw,kxw->kcyx", ay, feature_map, ax)


def roi_features(
    feature_map: torch.Tensor,
    boxes: torch.Tensor,
    resolution: int = 7,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    aligned: bool = True,
) -> torch.Tensor:
    """One vector per box: RoIAlign, then the maximum over its resolution x resolution bins. (C, H, W), (K, 4)
    -> (K, C)."""
    pooled = roi_align(feature_map, boxes, resolution, spatial_scale, sampling_ratio, aligned)
    return pooled.flatten(2).amax(-1) if len(pooled) else pooled.new_zeros(0, feature_map.shape[0])
