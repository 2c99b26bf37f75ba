"""AutoAugment's ImageNet policy against its definition: the policy table of the AutoAugment paper (Cubuk et al.
2019, appendix, as timm's `auto_augment_policy_original` lists it, which V-JEPA's image probes train with), timm's
level-to-argument rules for its "original" ops, PIL's operations (posterize, solarize, the enhancers), and how a
sub-policy is drawn (one of 25 uniformly, each op with its probability)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from videojepa.data.autoaugment import POLICY, apply_autoaugment, argument, draw_autoaugment
from videojepa.data.randaugment import apply_plan

# The paper's ImageNet policy, copied here by hand: (operation, probability, magnitude level 0..10)
PAPER = [
    [("Posterize", 0.4, 8), ("Rotate", 0.6, 9)],
    [("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)],
    [("Equalize", 0.8, 8), ("Equalize", 0.6, 3)],
    [("Posterize", 0.6, 7), ("Posterize", 0.6, 6)],
    [("Equalize", 0.4, 7), ("Solarize", 0.2, 4)],
    [("Equalize", 0.4, 4), ("Rotate", 0.8, 8)],
    [("Solarize", 0.6, 3), ("Equalize", 0.6, 7)],
    [("Posterize", 0.8, 5), ("Equalize", 1.0, 2)],
    [("Rotate", 0.2, 3), ("Solarize", 0.6, 8)],
    [("Equalize", 0.6, 8), ("Posterize", 0.4, 6)],
    [("Rotate", 0.8, 8), ("Color", 0.4, 0)],
    [("Rotate", 0.4, 9), ("Equalize", 0.6, 2)],
    [("Equalize", 0.0, 7), ("Equalize", 0.8, 8)],
    [("Invert", 0.6, 4), ("Equalize", 1.0, 8)],
    [("Color", 0.6, 4), ("Contrast", 1.0, 8)],
    [("Rotate", 0.8, 8), ("Color", 1.0, 2)],
    [("Color", 0.8, 8), ("Solarize", 0.8, 7)],
    [("Sharpness", 0.4, 7), ("Invert", 0.6, 8)],
    [("ShearX", 0.6, 5), ("Equalize", 1.0, 9)],
    [("Color", 0.4, 0), ("Equalize", 0.6, 3)],
    [("Equalize", 0.4, 7), ("Solarize", 0.2, 4)],
    [("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)],
    [("Invert", 0.6, 4), ("Equalize", 1.0, 8)],
    [("Color", 0.6, 4), ("Contrast", 1.0, 8)],
    [("Equalize", 0.8, 8), ("Equalize", 0.6, 3)],
]
NAMES = {"ShearX": "shear_x", "AutoContrast": "autocontrast"}


def ours_of(paper):
    return [tuple((NAMES.get(n, n.lower()), p, m) for n, p, m in sub) for sub in paper]


def image(seed=0, h=24, w=20) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def run(op: str, arg: float, im: np.ndarray) -> np.ndarray:
    """Our op on one image (a one-frame clip), back as float levels 0..255."""
    clip = torch.from_numpy(im).permute(2, 0, 1)[:, None].float() / 255
    return apply_autoaugment(clip, [(op, arg)])[:, 0].permute(1, 2, 0).double().numpy() * 255


def test_the_policy_is_the_papers():
    assert list(POLICY) == ours_of(PAPER)


def test_levels_map_to_timms_arguments():
    # timm: _posterize_original_level_to_arg int(l / 10 * 4) + 4, _solarize_level_to_arg min(256, int(l / 10 * 256)),
    # _rotate_level_to_arg l / 10 * 30, _shear_level_to_arg l / 10 * 0.3, _enhance_level_to_arg l / 10 * 1.8 + 0.1
    assert [argument("posterize", level) for level in (5, 6, 7, 8)] == [6, 6, 6, 7]
    assert [argument("solarize", level) for level in (3, 4, 5, 7, 8)] == [76, 102, 128, 179, 204]
    assert argument("rotate", 9, -1.0) == pytest.approx(-27.0) and argument("shear_x", 5) == pytest.approx(0.15)
    assert [round(argument("color", level), 6) for level in (0, 2, 4, 8)] == [0.1, 0.46, 0.82, 1.54]
    assert argument("contrast", 8) == argument("color", 8) and argument("sharpness", 7) == pytest.approx(1.36)


def test_each_op_equals_pil():
    im = image()
    pil = Image.fromarray(im)
    assert np.allclose(run("posterize", 6, im), np.asarray(ImageOps.posterize(pil, 6), float), atol=1e-4)
    assert np.allclose(run("posterize", 8, im), im.astype(float), atol=1e-4)  # 8 bits kept: unchanged
    assert np.allclose(run("solarize", 128, im), np.asarray(ImageOps.solarize(pil, 128), float))
    assert np.allclose(run("invert", 0, im), np.asarray(ImageOps.invert(pil), float))
    # the enhancers: PIL's blend formulas written out (luma ITU-R 601-2; contrast: with the mean luma; sharpness:
    # with the SMOOTH kernel inside, the border kept), exactly; and PIL itself within its uint8 rounding (1.5 levels)
    x = im.astype(float)
    luma = x @ np.array([0.299, 0.587, 0.114])
    smooth = x.copy()
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]]) / 13.0
    smooth[1:-1, 1:-1] = sum(kernel[a, b] * x[a : a + 22, b : b + 18] for a in range(3) for b in range(3))
    others = {"color": luma[..., None], "contrast": np.full_like(x, luma.mean()), "sharpness": smooth}
    enhancers = {"color": ImageEnhance.Color, "contrast": ImageEnhance.Contrast, "sharpness": ImageEnhance.Sharpness}
    for op, other in others.items():
        for factor in (0.1, 1.54):
            ref = np.clip(other + factor * (x - other), 0, 255)
            assert np.abs(run(op, factor, im) - ref).max() < 1e-3, (op, factor)
            pil_ref = np.asarray(enhancers[op](pil).enhance(factor), float)
            assert np.abs(run(op, factor, im) - pil_ref).max() < 1.5, (op, factor)


def test_geometric_ops_are_randaugments_at_the_same_angle_and_shear():
    """Rotate by 27 degrees is RandAugment's rotate at m = 9 (30 m / 10), shear 0.15 its shear_x at m = 5; those
    are checked against PIL's affine in test_randaugment_ops."""
    clip = torch.from_numpy(image()).permute(2, 0, 1)[:, None].float() / 255
    assert torch.allclose(apply_autoaugment(clip, [("rotate", -27.0)]), apply_plan(clip, [("rotate", 9.0, -1.0)]))
    assert torch.allclose(apply_autoaugment(clip, [("shear_x", 0.15)]), apply_plan(clip, [("shear_x", 5.0, 1.0)]))


def expected_counts(paper, draws: int) -> Counter:
    counts = Counter()
    for sub in ours_of(paper):
        for name, prob, _ in sub:
            counts[name] += draws * prob / len(paper)
    return counts


def test_draws_pick_a_sub_policy_uniformly_and_fire_each_op_with_its_probability():
    rng, draws = np.random.default_rng(0), 20_000
    seen = Counter(name for _ in range(draws) for name, _ in draw_autoaugment(rng))
    expected = expected_counts(PAPER, draws)
    for name, count in expected.items():
        assert abs(seen[name] - count) < 4 * math.sqrt(count) + 1, (name, seen[name], count)
    # negative control: every op firing always (probability 1) would be told apart
    always = expected_counts([[(n, 1.0, m) for n, _, m in sub] for sub in PAPER], draws)
    assert any(abs(seen[n] - c) > 4 * math.sqrt(c) + 1 for n, c in always.items())


def test_clip_augment_applies_autoaugment_in_place_of_randaugment():
    from videojepa.data.augment import ClipAugment

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    clip = (torch.from_numpy(image()).permute(2, 0, 1)[:, None].float() / 255).expand(-1, 4, -1, -1)  # a still clip
    normalised = (clip - torch.tensor(mean).view(3, 1, 1, 1)) / torch.tensor(std).view(3, 1, 1, 1)
    augment = ClipAugment(mean, std, randaugment_n=0, erase_prob=0.0, auto_augment=True)
    changed = [not torch.equal(augment(normalised, np.random.default_rng(s)), normalised) for s in range(20)]
    assert 5 < sum(changed) < 20  # some draws fire no op (e.g. a sub-policy whose ops all miss)
    out = augment(normalised, np.random.default_rng(next(s for s in range(20) if changed[s])))
    assert out.shape == normalised.shape and all(torch.equal(out[:, 0], out[:, t]) for t in range(4))  # frames alike
