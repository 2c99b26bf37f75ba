"""Pictures of sampled masks: `videojepa masks CONFIG --out PNG` and the demo's masks.png.

    draw_masks(sample_masks(generators, names, samples=4), "masks.png")    # the token grids alone
    draw_masks(masks, "masks.png", clip=clip, tubelet=2, patch=8)          # over a clip's frames

A mask is a (T' x H' x W') boolean array on the token grid, True = target (masked, predicted).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from videojepa.utils.files import atomic_savefig
from videojepa.utils.plotting import pyplot

TINT = np.array([0.85, 0.1, 0.1])  # target tokens drawn over a clip


def sample_masks(generators: Sequence, names: Sequence[str], samples: int = 1, seed: int = 0) -> list:
    """`samples` target masks of each generator: [(name, bool T' x H' x W' array)], generator by generator."""
    generator = torch.Generator().manual_seed(seed)
    return [(name, mask.numpy()) for gen, name in zip(generators, names) for mask in gen.sample(samples, generator)]


def draw_masks(
    masks: list,
    path: str | Path,
    clip: np.ndarray | None = None,
    tubelet: int = 1,
    patch: int = 1,
    columns: int | None = None,
) -> None:
    """One row per (label, mask), one column per token frame (at most `columns` of them, evenly spaced).

    Without `clip` each panel is the mask itself (black = target, white = context). With `clip` (T x H x W x 3,
    values 0..1, tokens of `tubelet` frames and `patch` x `patch` pixels) the first row is the clip and every
    mask is drawn over it: target tokens shaded red, the context (what the encoder sees) left clear; a
    column shows a token frame's first video frame.
    """
    plt = pyplot()
    token_frames = masks[0][1].shape[0] if masks else clip.shape[0] // tubelet
    count = token_frames if columns is None else min(columns, token_frames)
    shown = np.unique(np.linspace(0, token_frames - 1, count).round().astype(int))
    rows = ([("clip", None)] if clip is not None else []) + list(masks)
    size = (1.3, 1.35) if clip is not None else (1.2, 1.25)  # inches per panel
    fig, axes = plt.subplots(len(rows), len(shown), figsize=(size[0] * len(shown), size[1] * len(rows)), squeeze=False)
    for r, (label, mask) in enumerate(rows):
        for c, t in enumerate(shown):
            ax = axes[r, c]
            if clip is None:
                ax.imshow(mask[t], cmap="gray_r", vmin=0, vmax=1)
            else:
                ax.imshow(
                    _over_frame(clip[t * tubelet], None if mask is None else mask[t], patch), interpolation="nearest"
                )
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label if mask is None else f"{label}\n{mask.mean():.0%} masked", fontsize=6)
            if r == 0:
                ax.set_title(f"t={t}" if clip is None else f"frame {t * tubelet}", fontsize=7)
    fig.suptitle(
        "black = target (masked), white = context"
        if clip is None
        else "red = target tokens (predicted), clear = context (what the encoder sees)",
        fontsize=8,
    )
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def _over_frame(frame: np.ndarray, mask_frame: np.ndarray | None, patch: int) -> np.ndarray:
    """A video frame with one token frame's target tokens shaded."""
    if mask_frame is None:
        return frame
    pixels = np.kron(mask_frame.astype(float), np.ones((patch, patch)))[..., None]  # token -> pixels
    return frame * (1 - 0.7 * pixels) + 0.7 * pixels * TINT
