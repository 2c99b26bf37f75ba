"""RandAugment for clips in plain torch, applied identically to every frame (the paper's rand-m7-n4-mstd0.5-inc1).

    plan = draw_plan(rng, num_ops=4, magnitude=7, magnitude_std=0.5)   # [(op name, magnitude, sign), ...]
    clip = apply_plan(clip, plan)                                      # clip: C x T x H x W in [0, 1]

`draw_plan` picks `num_ops` operations (with replacement), each kept with probability 1/2, each with its
own magnitude ~ N(m, mstd) clipped to [0, 10] and a random sign; `apply_plan` applies them in order to
every frame with the same parameters, so motion is never distorted. Statistics an op needs (contrast's
mean grey, autocontrast's range, equalize's histogram) are taken per frame, as when the ops run frame
by frame. The ops are the "increasing" set (a larger magnitude is always a stronger change):
autocontrast, equalize, invert, rotate (30 deg at m=10), posterize (4 -> 0 bits kept), solarize
(threshold 256 -> 0 levels), solarize_add (+110 levels at m=10 below level 128), color / contrast /
brightness / sharpness (factor 1 +- 0.9 m/10), shear_x / shear_y (0.3 m/10, about the top / left edge as
PIL's affine), translate_x / translate_y (0.45 m/10 of the side). Geometric ops sample bilinearly and fill
uncovered pixels with 0.5 grey. tests/test_randaugment_ops.py checks every op against its definition.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

GREY = 0.5


def _blend(frames: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ImageEnhance: other + factor * (frames - other), clipped to [0, 1]."""
    return (other + factor * (frames - other)).clamp(0.0, 1.0)


def _grey(frames: torch.Tensor) -> torch.Tensor:
    """Luma (ITU-R 601) of (T, 3, H, W) frames, kept as (T, 1, H, W)."""
    r, g, b = frames.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def _affine(frames: torch.Tensor, matrix: list[list[float]]) -> torch.Tensor:
    """Sample every frame at matrix @ (x, y, 1) in normalised [-1, 1] coordinates; outside pixels are grey."""
    theta = torch.tensor(matrix, dtype=frames.dtype).expand(frames.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(frames.shape), align_corners=False)
    ones = torch.ones_like(frames[:, :1])
    out = F.grid_sample(torch.cat([frames, ones], 1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = out[:, -1:]
    return out[:, :-1] + (1.0 - inside) * GREY


def autocontrast(frames, m, sign):
    lo = frames.amin(dim=(-2, -1), keepdim=True)
    hi = frames.amax(dim=(-2, -1), keepdim=True)
    scale = torch.where(hi > lo, 1.0 / (hi - lo).clamp_min(1e-8), torch.ones_like(hi))
    return torch.where(hi > lo, (frames - lo) * scale, frames).clamp(0.0, 1.0)


def equalize(frames, m, sign):
    """Histogram equalisation per frame and channel over 256 levels."""
    levels = (frames * 255).round().long().clamp(0, 255)
    flat = levels.flatten(-2)  # (T, C, HW)
    ones = torch.ones_like(flat, dtype=torch.float32)
    hist = torch.zeros(*flat.shape[:-1], 256, dtype=torch.float32).scatter_add_(-1, flat, ones)
    cdf = hist.cumsum(-1)
    cdf_min = torch.where(hist > 0, cdf, torch.full_like(cdf, float("inf"))).amin(-1, keepdim=True)
    total = cdf[..., -1:]
    lut = ((cdf - cdf_min) / (total - cdf_min).clamp_min(1.0)).clamp(0.0, 1.0)
    flat_out = lut.gather(-1, flat).to(frames.dtype)
    constant = (total - cdf_min) <= 0  # a single level: nothing to equalise
    return torch.where(constant.unsqueeze(-1), frames, flat_out.view_as(frames))


def invert(frames, m, sign):
    return 1.0 - frames


def rotate(frames, m, sign):
    angle = math.radians(30.0 * m / 10 * sign)
    h, w = frames.shape[-2:]
    c, s = math.cos(angle), math.sin(angle)
    return _affine(frames, [[c, -s * h / w, 0.0], [s * w / h, c, 0.0]])


def keep_bits(frames: torch.Tensor, bits: int) -> torch.Tensor:
    """PIL's ImageOps.posterize: keep the `bits` most significant bits of every 8-bit level."""
    shift = 8 - bits
    levels = (frames * 255).round().to(torch.int32)
    return ((levels >> shift) << shift).to(frames.dtype) / 255.0


def solarize_from(frames: torch.Tensor, level: int) -> torch.Tensor:
    """PIL's ImageOps.solarize: invert the 8-bit levels >= `level`; the threshold sits half a level below it, so
    decoded uint8 levels / 255 compare exactly."""
    return torch.where(frames >= (level - 0.5) / 255.0, 1.0 - frames, frames)


def posterize(frames, m, sign):
    return keep_bits(frames, 4 - int(m / 10 * 4))  # "increasing": fewer bits as m grows (4 at m < 2.5, 0 at 10)


def solarize(frames, m, sign):
    """timm's levels: invert levels >= 256 - int(m / 10 * 256)."""
    return solarize_from(frames, 256 - int(m / 10 * 256))


def solarize_add(frames, m, sign):
    """timm's levels: add int(m / 10 * 110) levels to the levels below 128."""
    return torch.where(frames < 0.5, (frames + int(m / 10 * 110) / 255.0).clamp(max=1.0), frames)


def enhance_color(frames: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ImageEnhance.Color: blend with the luma image."""
    return _blend(frames, _grey(frames).expand_as(frames), factor)


def enhance_contrast(frames: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ImageEnhance.Contrast: blend with the mean luma."""
    mean = _grey(frames).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(frames, mean.expand_as(frames), factor)


def enhance_sharpness(frames: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ImageEnhance.Sharpness: blend with the SMOOTH kernel (1 1 1 / 1 5 1 / 1 1 1) / 13 inside, the border
    kept."""
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], dtype=frames.dtype) / 13
    channels = frames.shape[1]
    smooth = F.conv2d(frames, kernel.expand(channels, 1, 3, 3), padding=1, groups=channels)
    smooth[..., 0, :], smooth[..., -1, :] = frames[..., 0, :], frames[..., -1, :]
    smooth[..., :, 0], smooth[..., :, -1] = frames[..., :, 0], frames[..., :, -1]
    return _blend(frames, smooth, factor)


def color(frames, m, sign):
    return enhance_color(frames, 1.0 + 0.9 * m / 10 * sign)


def contrast(frames, m, sign):
    return enhance_contrast(frames, 1.0 + 0.9 * m / 10 * sign)


def brightness(frames, m, sign):
    return _blend(frames, torch.zeros_like(frames), 1.0 + 0.9 * m / 10 * sign)


def sharpness(frames, m, sign):
    return enhance_sharpness(frames, 1.0 + 0.9 * m / 10 * sign)


def shear_x(frames, m, sign):
    """PIL's affine (1, f, 0, 0, 1, 0), as timm shears: about the top edge (x_in = x + f y from the top-left
    corner), so the bottom rows also shift by f * height / 2 relative to a shear about the centre."""
    h, w = frames.shape[-2:]
    f = 0.3 * m / 10 * sign * h / w  # in normalised coordinates
    return _affine(frames, [[1.0, f, f], [0.0, 1.0, 0.0]])


def shear_y(frames, m, sign):
    """PIL's affine (1, 0, 0, f, 1, 0): about the left edge."""
    h, w = frames.shape[-2:]
    f = 0.3 * m / 10 * sign * w / h
    return _affine(frames, [[1.0, 0.0, 0.0], [f, 1.0, f]])


def translate_x(frames, m, sign):
    return _affine(frames, [[1.0, 0.0, 2 * 0.45 * m / 10 * sign], [0.0, 1.0, 0.0]])


def translate_y(frames, m, sign):
    return _affine(frames, [[1.0, 0.0, 0.0], [0.0, 1.0, 2 * 0.45 * m / 10 * sign]])


OPS = {
    f.__name__: f
    for f in (
        autocontrast,
        equalize,
        invert,
        rotate,
        posterize,
        solarize,
        solarize_add,
        color,
        contrast,
        brightness,
        sharpness,
        shear_x,
        shear_y,
        translate_x,
        translate_y,
    )
}


def draw_plan(
    rng: np.random.Generator, num_ops: int = 4, magnitude: float = 7.0, magnitude_std: float = 0.5, prob: float = 0.5
) -> list[tuple[str, float, float]]:
    """The ops one clip gets: (name, magnitude in [0, 10], sign +-1), in the order they are applied."""
    names = list(OPS)
    plan = []
    for _ in range(num_ops):
        name = names[int(rng.integers(len(names)))]
        m = float(np.clip(rng.normal(magnitude, magnitude_std) if magnitude_std > 0 else magnitude, 0.0, 10.0))
        sign = -1.0 if rng.random() < 0.5 else 1.0
        if rng.random() < prob:
            plan.append((name, m, sign))
    return plan


def apply_plan(clip: torch.Tensor, plan: list[tuple[str, float, float]]) -> torch.Tensor:
    """Apply the plan's ops to every frame of a clip (C, T, H, W) with values in [0, 1]."""
    if not plan:
        return clip
    frames = clip.transpose(0, 1)  # (T, C, H, W): the ops treat frames as a batch of images
    for name, m, sign in plan:
        frames = OPS[name](frames, m, sign)
    return frames.transpose(0, 1).contiguous()
