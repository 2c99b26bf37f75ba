"""RoIAlign in plain torch (`videojepa.eval.roi`): hand-computed samples, the map's edges, whole-frame boxes, and
an independent per-point implementation of torchvision's roi_align (aligned=True) on random maps and boxes."""

import math

import pytest
import torch
import torch.nn.functional as F

from videojepa.eval.roi import roi_align, roi_features, token_map

# 4 x 4 map, cell (i, j) = (4i + j)^2: not linear, so every sample point shows in the result
SQUARES = (torch.arange(16, dtype=torch.float64) ** 2).reshape(1, 4, 4)


def align(box, resolution=1, sampling_ratio=2, aligned=True, feature_map=SQUARES):
    return roi_align(feature_map, torch.tensor([box], dtype=torch.float64), resolution, 1.0, sampling_ratio, aligned)


def test_bilinear_samples_at_known_points():
    # aligned: box [1, 3] x [1, 3] starts at 0.5 and spans 2 cells; 2 x 2 samples at 1.0 and 2.0 on each axis,
    # exactly the cells (1,1), (1,2), (2,1), (2,2) = 25, 36, 81, 100
    assert align((1, 1, 3, 3)).item() == pytest.approx((25 + 36 + 81 + 100) / 4, abs=1e-9)
    # legacy (aligned=False): samples at 1.5 and 2.5, each the mean of 4 cells: 60.5, 76.5, 136.5, 160.5
    assert align((1, 1, 3, 3), aligned=False).item() == pytest.approx((60.5 + 76.5 + 136.5 + 160.5) / 4, abs=1e-9)
    # one sample at y = 0.25, x = 0.75: 0.75*0.25*0 + 0.75*0.75*1 + 0.25*0.25*16 + 0.25*0.75*25 = 6.25
    assert align((1.0, 0.5, 1.5, 1.0), sampling_ratio=1).item() == pytest.approx(6.25, abs=1e-9)


def test_boxes_at_the_edges():
    # top-left cell: samples at -0.25 (clamped to 0) and 0.25: 0, 0.25, 4, 4.75
    assert align((0, 0, 1, 1)).item() == pytest.approx((0 + 0.25 + 4 + 4.75) / 4, abs=1e-9)
    # bottom-right cell: samples at 2.75 and 3.25 (clamped to the last row/column): 192.25, 199, 217.75, 225
    assert align((3, 3, 4, 4)).item() == pytest.approx((192.25 + 199 + 217.75 + 225) / 4, abs=1e-9)
    # a box reaching past the left edge: x samples at -1.5 (more than a cell outside: 0) and 0.5; y at 0 and 1
    assert align((-2, 0, 2, 2)).item() == pytest.approx((0 + 0.5 + 0 + 20.5) / 4, abs=1e-9)
    # a sample exactly at x = 4 (the map's width) is clamped onto the last column, one at 4.25 reads 0
    assert align((4, 0, 5, 1), sampling_ratio=1).item() == pytest.approx(9.0, abs=1e-9)
    assert align((4.5, 0, 5.0, 1), sampling_ratio=1).item() == 0.0


def bilinear(feature_map, y, x):
    """One sample, torchvision's rule, written out point by point."""
    _, H, W = feature_map.shape
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return torch.zeros(feature_map.shape[0], dtype=feature_map.dtype)
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= H - 1:
        y0 = y1 = H - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= W - 1:
        x0 = x1 = W - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return (
        (1 - ly) * (1 - lx) * feature_map[:, y0, x0]
        + (1 - ly) * lx * feature_map[:, y0, x1]
        + ly * (1 - lx) * feature_map[:, y1, x0]
        + ly * lx * feature_map[:, y1, x1]
    )


def reference_roi_align(feature_map, box, resolution, scale, sampling_ratio, aligned):
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (v * scale - offset for v in box)
    w, h = x2 - x1, y2 - y1
    if not aligned:
        w, h = max(w, 1.0), max(h, 1.0)
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(h / resolution)
    gw = sampling_ratio if sampling_ratio > 0 else math.ceil(w / resolution)
    out = torch.zeros(feature_map.shape[0], resolution, resolution, dtype=feature_map.dtype)
    for py in range(resolution):
        for px in range(resolution):
            total = torch.zeros(feature_map.shape[0], dtype=feature_map.dtype)
            for iy in range(gh):
                for ix in range(gw):
                    y = y1 + py * h / resolution + (iy + 0.5) * h / resolution / gh
                    x = x1 + px * w / resolution + (ix + 0.5) * w / resolution / gw
                    total += bilinear(feature_map, y, x)
            out[:, py, px] = total / max(gh * gw, 1)
    return out


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 1, 3])
def test_matches_a_point_by_point_implementation(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(0)
    feature_map = torch.randn(5, 7, 9, generator=g, dtype=torch.float64)
    corners = torch.rand(12, 2, 2, generator=g, dtype=torch.float64) * torch.tensor([36.0, 28.0]) - 2.0
    boxes = torch.cat([corners.min(1).values, corners.max(1).values], 1)  # x1, y1, x2, y2 in input pixels
    boxes[0] = torch.tensor([0.0, 0.0, 36.0, 28.0])  # the whole input
    boxes[1] = torch.tensor([10.0, 10.0, 10.0, 12.0])  # zero width
    scale = 0.25  # 36 x 28 input pixels -> the 9 x 7 map
    got = roi_align(feature_map, boxes, 3, scale, sampling_ratio, aligned)
    for k, box in enumerate(boxes.tolist()):
        expected = reference_roi_align(feature_map, box, 3, scale, sampling_ratio, aligned)
        assert torch.allclose(got[k], expected, atol=1e-10), (k, box)


def test_whole_frame_box_equals_the_spatial_mean():
    """A box over the whole map with resolution r dividing its sides samples each token centre exactly once
    (aligned=True, adaptive sampling): each bin is the mean of its block of tokens, the bins' mean is the spatial
    mean, and at r = 1 the pooled feature (RoIAlign + max over bins) is the spatial mean itself."""
    g = torch.Generator().manual_seed(1)
    feature_map = torch.randn(4, 6, 8, generator=g, dtype=torch.float64)
    whole = torch.tensor([[0.0, 0.0, 8.0, 6.0]])
    mean = feature_map.mean((1, 2))
    assert torch.allclose(roi_features(feature_map, whole, resolution=1)[0], mean, atol=1e-12)
    bins = roi_align(feature_map, whole, resolution=2)[0]  # 2 x 2 bins of 3 x 4 tokens
    assert torch.allclose(bins, F.avg_pool2d(feature_map[None], (3, 4))[0], atol=1e-12)
    assert torch.allclose(bins.mean((1, 2)), mean, atol=1e-12)
    assert torch.allclose(roi_features(feature_map, whole, resolution=2)[0], bins.flatten(1).amax(1), atol=1e-12)
    # negative control: the legacy alignment samples between token centres, not the mean
    legacy = roi_features(feature_map, whole, resolution=1, aligned=False)[0]
    assert (legacy - mean).abs().max() > 1e-3


def test_token_map_averages_time():
    tokens = torch.arange(2 * 3 * 2 * 2 * 5, dtype=torch.float32).reshape(2, 3 * 2 * 2, 5)  # (B, T'H'W', C)
    maps = token_map(tokens, (3, 2, 2))
    assert maps.shape == (2, 5, 2, 2)
    by_time = tokens.reshape(2, 3, 2, 2, 5)
    assert torch.equal(maps[1, 4, 0, 1], by_time[1, :, 0, 1, 4].mean())
    with pytest.raises(ValueError, match="do not fill"):
        token_map(tokens, (2, 2, 2))
