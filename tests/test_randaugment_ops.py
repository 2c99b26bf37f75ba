"""Each RandAugment operation against its definition: the op and magnitude mapping of timm's `rand-m7-n4-mstd0.5-inc1`
(the "increasing" ops, as V-JEPA's and VideoMAE's video RandAugment copy them), which applies PIL operations to
uint8 images. The references below are written here in numpy from those definitions (PIL's ImageOps /
ImageEnhance formulas, PIL's affine convention); where PIL's own result is comparable (interior pixels, uint8
rounding) it is checked too. A frame is an image: the ops run on (C, T, H, W) clips frame by frame.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from videojepa.data.randaugment import OPS, apply_plan

GREY = 0.5  # our fill for uncovered pixels (timm fills with its img_mean, 128 grey by default)
H, W = 24, 20  # not square, so that height and width cannot be swapped unnoticed
M = 7.3  # a magnitude that is not a round number


def clip(seed=0, frames=2) -> torch.Tensor:
    """A clip of uint8 levels / 255 (so PIL sees exactly the same image), values spread over [0, 1]."""
    rng = np.random.default_rng(seed)
    levels = np.clip(rng.beta(2, 3, (3, frames, H, W)) * 255 + 0.5, 0, 255).astype(np.uint8)
    return torch.from_numpy(levels).float() / 255


def ours(name: str, x: torch.Tensor, m: float = M, sign: float = 1.0) -> np.ndarray:
    return apply_plan(x, [(name, m, sign)]).double().numpy()


def frames(x: torch.Tensor) -> list[np.ndarray]:
    """(C, T, H, W) -> T images (H, W, C) in float64."""
    return [x[:, t].permute(1, 2, 0).double().numpy() for t in range(x.shape[1])]


def stack(images: list[np.ndarray]) -> np.ndarray:
    return np.stack([im.transpose(2, 0, 1) for im in images], axis=1)


def luma(im: np.ndarray) -> np.ndarray:
    """PIL's RGB -> L conversion (ITU-R 601-2): L = R 299/1000 + G 587/1000 + B 114/1000."""
    return im @ np.array([0.299, 0.587, 0.114])


def enhance(m: float, sign: float) -> float:
    """timm's _enhance_increasing_level_to_arg: 1 +- 0.9 m / 10."""
    return 1.0 + sign * 0.9 * m / 10


# ------------------------------------------------------------------ photometric ops: numpy definitions
def ref_autocontrast(im, m, sign):
    lo, hi = im.min(axis=(0, 1)), im.max(axis=(0, 1))  # per channel (PIL's per-band histogram, cutoff 0)
    return np.where(hi > lo, (im - lo) / np.where(hi > lo, hi - lo, 1.0), im)


def ref_equalize(im, m, sign):
    """Per channel over 256 levels: level l -> (cdf(l) - cdf_min) / (N - cdf_min), cdf_min the count of the lowest
    occupied level (the usual definition; PIL's integer `step` version agrees up to its rounding, checked below)."""
    out = np.empty_like(im)
    for c in range(im.shape[2]):
        levels = np.rint(im[..., c] * 255).astype(int)
        cdf = np.bincount(levels.ravel(), minlength=256).cumsum()
        cdf_min, n = cdf[levels.min()], levels.size
        out[..., c] = im[..., c] if n == cdf_min else (cdf[levels] - cdf_min) / (n - cdf_min)
    return out


def ref_invert(im, m, sign):
    return 1.0 - im


def ref_posterize(im, m, sign):
    bits = 4 - int(m / 10 * 4)  # timm's _posterize_increasing_level_to_arg: 4 bits kept at m = 0, none at 10
    levels = np.rint(im * 255).astype(int)
    return ((levels >> (8 - bits)) << (8 - bits)) / 255.0


def ref_solarize(im, m, sign):
    """PIL's solarize(threshold): levels >= threshold inverted; timm's threshold 256 - int(m / 10 * 256)."""
    levels = np.rint(im * 255)
    return np.where(levels >= 256 - int(m / 10 * 256), 1.0 - im, im)


def ref_solarize_add(im, m, sign):
    """timm's solarize_add: int(m / 10 * 110) levels added to levels below 128, clipped at 255."""
    levels = np.rint(im * 255)
    return np.where(levels < 128, np.minimum(im + int(m / 10 * 110) / 255, 1.0), im)


def blend(im, degenerate, factor):
    """PIL ImageEnhance: degenerate + factor * (image - degenerate), clipped."""
    return np.clip(degenerate + factor * (im - degenerate), 0.0, 1.0)


def ref_color(im, m, sign):
    return blend(im, luma(im)[..., None], enhance(m, sign))


def ref_contrast(im, m, sign):
    return blend(im, np.full_like(im, luma(im).mean()), enhance(m, sign))


def ref_brightness(im, m, sign):
    return blend(im, np.zeros_like(im), enhance(m, sign))


def ref_sharpness(im, m, sign):
    """PIL's SMOOTH filter (1 1 1 / 1 5 1 / 1 1 1) / 13 on the inside, the one-pixel border unchanged."""
    smooth = im.copy()
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]]) / 13.0
    inner = sum(kernel[a, b] * im[a : a + H - 2, b : b + W - 2] for a in range(3) for b in range(3))
    smooth[1:-1, 1:-1] = inner
    return blend(im, smooth, enhance(m, sign))


# ------------------------------------------------------------------ geometric ops: PIL's affine definition
def sample_points(coeffs):
    """Where PIL's Image.transform(AFFINE, (a, b, c, d, e, f)) samples the input for each output pixel: output
    (x, y) reads input (a x + b y + c, d x + e y + f) in continuous coordinates (pixel centres at +0.5),
    returned in pixel-index coordinates (sx, sy), each (H, W)."""
    a, b, c, d, e, f = coeffs
    ys, xs = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    return a * xs + b * ys + c - 0.5, d * xs + e * ys + f - 0.5


def pil_affine(im: np.ndarray, coeffs) -> np.ndarray:
    """PIL's affine transform sampled bilinearly over the image extended by the grey fill (so a sample straddling
    the edge mixes image and fill)."""
    sx, sy = sample_points(coeffs)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    padded = np.pad(im, ((1, 1), (1, 1), (0, 0)), constant_values=GREY)
    out = np.zeros_like(im)
    for dy in (0, 1):
        for dx in (0, 1):
            weight = (1 - np.abs(sx - (x0 + dx))) * (1 - np.abs(sy - (y0 + dy)))
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= -1) & (yy <= H) & (xx >= -1) & (xx <= W)
            value = np.where(inside[..., None], padded[np.clip(yy + 1, 0, H + 1), np.clip(xx + 1, 0, W + 1)], GREY)
            out += weight[..., None] * value
    return out


def rotate_coeffs(degrees):
    """PIL's Image.rotate(degrees): counter-clockwise about the image centre."""
    angle = -math.radians(degrees)
    a, b, d, e = math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle)
    cx, cy = W / 2, H / 2
    return a, b, cx - a * cx - b * cy, d, e, cy - d * cx - e * cy


def ref_rotate(im, m, sign):
    return pil_affine(im, rotate_coeffs(sign * 30 * m / 10))  # timm: _rotate_level_to_arg, 30 degrees at m = 10


def ref_shear_x(im, m, sign):
    return pil_affine(im, (1, sign * 0.3 * m / 10, 0, 0, 1, 0))  # timm: shear_x, factor 0.3 at m = 10


def ref_shear_y(im, m, sign):
    return pil_affine(im, (1, 0, 0, sign * 0.3 * m / 10, 1, 0))


def ref_translate_x(im, m, sign):
    return pil_affine(im, (1, 0, sign * 0.45 * m / 10 * W, 0, 1, 0))  # timm: translate_x_rel, 0.45 of the width


def ref_translate_y(im, m, sign):
    return pil_affine(im, (1, 0, 0, 0, 1, sign * 0.45 * m / 10 * H))


REFERENCES = {name[4:]: f for name, f in dict(globals()).items() if name.startswith("ref_")}


def test_every_op_has_a_reference():
    assert set(REFERENCES) == set(OPS)


# float32 ops against float64 references: measured max abs difference <= 9.2e-8 (photometric) and 1.3e-6
# (geometric); 2e-5 leaves ~15x. Every op moves the clip by more than 0.05 at this magnitude.
TOL = 2e-5


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("name", sorted(OPS))
def test_each_op_equals_its_definition(name, sign):
    x = clip(seed=len(name))
    expected = stack([REFERENCES[name](im, M, sign) for im in frames(x)])
    got = ours(name, x, M, sign)
    assert np.abs(got - expected).max() < TOL, (name, np.abs(got - expected).max())
    assert np.abs(got - x.double().numpy()).max() > 0.05  # the op does something at this magnitude


def test_the_magnitude_mapping_at_the_ends():
    """m = 0 leaves the enhance and geometric ops at the identity; posterize keeps 4 bits at m < 2.5 and none at 10."""
    x = clip(seed=1)
    for name in ("rotate", "shear_x", "shear_y", "translate_x", "translate_y", "color", "contrast", "brightness"):
        assert np.abs(ours(name, x, 0.0) - x.double().numpy()).max() < 1e-6, name
    assert np.array_equal(ours("posterize", x, 10.0), np.zeros_like(x.double().numpy()))
    assert np.abs(ours("posterize", x, 2.4) - ref_posterize(x.double().numpy(), 2.4, 1)).max() < 1e-6


def pil_images(x: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(np.rint(im * 255).astype(np.uint8)) for im in frames(x)]


def test_the_photometric_ops_agree_with_pil_itself():
    """The same images through PIL (uint8): within PIL's rounding (contrast's mean is rounded to a level,
    equalize's lut to PIL's integer step: at most 4 levels on this 24 x 20 image; the others 1.5 levels)."""
    x = clip(seed=3)
    f = enhance(M, 1.0)
    pil = {
        "autocontrast": ImageOps.autocontrast,
        "invert": ImageOps.invert,
        "posterize": lambda im: ImageOps.posterize(im, 4 - int(M / 10 * 4)),
        "solarize": lambda im: ImageOps.solarize(im, 256 - int(M / 10 * 256)),
        "color": lambda im: ImageEnhance.Color(im).enhance(f),
        "contrast": lambda im: ImageEnhance.Contrast(im).enhance(f),
        "brightness": lambda im: ImageEnhance.Brightness(im).enhance(f),
        "sharpness": lambda im: ImageEnhance.Sharpness(im).enhance(f),
    }
    big = torch.from_numpy(np.random.default_rng(0).beta(2, 5, (3, 1, 96, 80)) * 255).round() / 255
    for name, op in pil.items():
        expected = stack([np.asarray(op(im), dtype=np.float64) / 255 for im in pil_images(x)])
        assert np.abs(ours(name, x) - expected).max() * 255 < 1.5, name
    # equalize on a larger image, where PIL's integer step is fine enough to compare (on 480 pixels it saturates)
    expected = np.asarray(ImageOps.equalize(pil_images(big.float())[0]), dtype=np.float64) / 255
    assert np.abs(ours("equalize", big.float())[:, 0].transpose(1, 2, 0) - expected).max() * 255 < 4


def test_the_geometric_ops_agree_with_pil_itself_inside_the_frame():
    """PIL's own transforms (bilinear, grey fill) on the pixels whose four neighbours all lie inside the image
    (PIL's edge handling differs): within its fixed-point rounding, 1 level on average, 3 at most. The
    reference's convention is PIL's (shear about the top-left corner, rotation counter-clockwise about the
    centre); a shear about the centre (this library's until this test) misses by ~40 levels."""
    x = clip(seed=4, frames=1)
    for name, coeffs in (
        ("rotate", rotate_coeffs(30 * M / 10)),
        ("shear_x", (1, 0.3 * M / 10, 0, 0, 1, 0)),
        ("shear_y", (1, 0, 0, 0.3 * M / 10, 1, 0)),
        ("translate_x", (1, 0, 0.45 * M / 10 * W, 0, 1, 0)),
        ("translate_y", (1, 0, 0, 0, 1, 0.45 * M / 10 * H)),
    ):
        image = pil_images(x)[0].transform((W, H), Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=(128,) * 3)
        expected = np.asarray(image, dtype=np.float64) / 255
        sx, sy = sample_points(coeffs)
        inside = (sx >= 0) & (sx <= W - 1) & (sy >= 0) & (sy <= H - 1)
        levels = np.abs(ours(name, x)[:, 0].transpose(1, 2, 0) - expected)[inside] * 255
        assert inside.sum() > 100 and levels.mean() < 1.0 and levels.max() < 3, (name, levels.mean(), levels.max())
