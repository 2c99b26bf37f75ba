"""Draw sampled masks: one row per sample and generator, one panel per token frame."""
from __future__ import annotations

import torch


def draw_masks(generators: list, names: list[str], path: str, samples: int = 4, seed: int = 0) -> None:
    from videojepa.plots import pyplot
    from videojepa.utils.files import atomic_savefig

    plt = pyplot()
    generator = torch.Generator().manual_seed(seed)
    frames = generators[0].grid[0]
    rows = len(generators) * samples
    fig, axes = plt.subplots(rows, frames, figsize=(1.2 * frames, 1.25 * rows), squeeze=False)
    for g, (gen, name) in enumerate(zip(generators, names)):
        masked = gen.sample(samples, generator)
        for s in range(samples):
            row = g * samples + s
            ratio = masked[s].float().mean().item()
            for t in range(frames):
                ax = axes[row, t]
                ax.imshow(masked[s, t].numpy(), cmap="gray_r", vmin=0, vmax=1)
                ax.set_xticks([]), ax.set_yticks([])
                if t == 0:
                    ax.set_ylabel(f"{name}\n{ratio:.0%} masked", fontsize=6)
                if row == 0:
                    ax.set_title(f"t={t}", fontsize=7)
    fig.suptitle("black = target (masked), white = context", fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
