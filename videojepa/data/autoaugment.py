"""AutoAugment's ImageNet policy for clips, applied identically to every frame (timm's `original`, which V-JEPA's
image probes train with).

    plan = draw_autoaugment(rng)        # [(op name, argument), ...]: one sub-policy, its ops that fire
    clip = apply_autoaugment(clip, plan)  # clip: C x T x H x W in [0, 1]

The policy (Cubuk et al. 2019, "AutoAugment", the ImageNet policy of its appendix) is 25 sub-policies of two
operations, each with a probability and a magnitude level 0..10. Per clip one sub-policy is drawn uniformly and
each of its operations fires with its probability, at its fixed magnitude (no magnitude noise). Levels map to
arguments as timm maps the policy's "original" ops: posterize keeps int(level / 10 * 4) + 4 bits (8: no change),
solarize inverts the 8-bit levels >= int(level / 10 * 256), rotate turns by 30 level / 10 degrees and shear_x
shears by 0.3 level / 10 (both with a random sign), color / contrast / sharpness blend with factor
level / 10 * 1.8 + 0.1 (level 0: factor 0.1, nearly grey; 5: 1.0, unchanged). The operations themselves are
RandAugment's (`randaugment`, each tested against its PIL definition): uncovered pixels of rotate / shear are
filled with 0.5 grey (timm fills with the image mean colour when its transforms are made for ImageNet data).
"""

from __future__ import annotations

import numpy as np
import torch

from videojepa.data import randaugment as ra

# the AutoAugment paper's ImageNet policy: (op, probability, magnitude level) pairs
POLICY = (
    (("posterize", 0.4, 8), ("rotate", 0.6, 9)),
    (("solarize", 0.6, 5), ("autocontrast", 0.6, 5)),
    (("equalize", 0.8, 8), ("equalize", 0.6, 3)),
    (("posterize", 0.6, 7), ("posterize", 0.6, 6)),
    (("equalize", 0.4, 7), ("solarize", 0.2, 4)),
    (("equalize", 0.4, 4), ("rotate", 0.8, 8)),
    (("solarize", 0.6, 3), ("equalize", 0.6, 7)),
    (("posterize", 0.8, 5), ("equalize", 1.0, 2)),
    (("rotate", 0.2, 3), ("solarize", 0.6, 8)),
    (("equalize", 0.6, 8), ("posterize", 0.4, 6)),
    (("rotate", 0.8, 8), ("color", 0.4, 0)),
    (("rotate", 0.4, 9), ("equalize", 0.6, 2)),
    (("equalize", 0.0, 7), ("equalize", 0.8, 8)),
    (("invert", 0.6, 4), ("equalize", 1.0, 8)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("rotate", 0.8, 8), ("color", 1.0, 2)),
    (("color", 0.8, 8), ("solarize", 0.8, 7)),
    (("sharpness", 0.4, 7), ("invert", 0.6, 8)),
    (("shear_x", 0.6, 5), ("equalize", 1.0, 9)),
    (("color", 0.4, 0), ("equalize", 0.6, 3)),
    (("equalize", 0.4, 7), ("solarize", 0.2, 4)),
    (("solarize", 0.6, 5), ("autocontrast", 0.6, 5)),
    (("invert", 0.6, 4), ("equalize", 1.0, 8)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("equalize", 0.8, 8), ("equalize", 0.6, 3)),
)


def argument(name: str, level: float, sign: float = 1.0) -> float:
    """The operation's argument at a magnitude level (module docstring); `sign` for rotate and shear_x."""
    if name == "posterize":
        return int(level / 10 * 4) + 4  # bits kept
    if name == "solarize":
        return min(256, int(level / 10 * 256))  # first inverted level
    if name == "rotate":
        return 30.0 * level / 10 * sign  # degrees
    if name == "shear_x":
        return 0.3 * level / 10 * sign
    if name in ("color", "contrast", "sharpness"):
        return level / 10 * 1.8 + 0.1  # blend factor
    return 0.0  # autocontrast, equalize, invert take none


def _op(name: str, frames: torch.Tensor, arg: float) -> torch.Tensor:
    """Frames (T, C, H, W) through one operation with its argument."""
    if name == "posterize":
        return frames if arg >= 8 else ra.keep_bits(frames, int(arg))
    if name == "solarize":
        return ra.solarize_from(frames, int(arg))
    if name == "rotate":  # RandAugment's rotate turns by 30 m / 10 degrees times its sign
        return ra.rotate(frames, abs(arg) / 3.0, 1.0 if arg >= 0 else -1.0)
    if name == "shear_x":  # and shears by 0.3 m / 10 times its sign
        return ra.shear_x(frames, abs(arg) / 0.03, 1.0 if arg >= 0 else -1.0)
    if name == "color":
        return ra.enhance_color(frames, arg)
    if name == "contrast":
        return ra.enhance_contrast(frames, arg)
    if name == "sharpness":
        return ra.enhance_sharpness(frames, arg)
    return ra.OPS[name](frames, 0.0, 1.0)  # autocontrast, equalize, invert


def draw_autoaugment(rng: np.random.Generator) -> list[tuple[str, float]]:
    """One clip's operations: a sub-policy drawn uniformly, each of its ops kept with its probability, with its
    argument (the random signs drawn here)."""
    plan = []
    for name, prob, level in POLICY[int(rng.integers(len(POLICY)))]:
        sign = -1.0 if rng.random() < 0.5 else 1.0
        if rng.random() < prob:
            plan.append((name, argument(name, level, sign)))
    return plan


def apply_autoaugment(clip: torch.Tensor, plan: list[tuple[str, float]]) -> torch.Tensor:
    """Apply the plan to every frame of a clip (C, T, H, W) with values in [0, 1]."""
    if not plan:
        return clip
    frames = clip.transpose(0, 1)  # (T, C, H, W): the ops treat frames as a batch of images
    for name, arg in plan:
        frames = _op(name, frames, arg)
    return frames.transpose(0, 1).contiguous()
