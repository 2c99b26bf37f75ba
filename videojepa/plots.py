"""Pictures of pretraining runs (PNG files, matplotlib's file-only Agg backend).

    plot_loss_curves({"vjepa": "runs/demo/runs/vjepa"}, "loss.png")          # from each run's metrics.jsonl
    plot_accuracy_vs_flops(results["rows"], results["chance"], budget, "acc.png")   # demo results rows
    plot_masks_on_clip(clip, [("multiblock 8x0.15", mask)], tubelet=2, patch=8, path="masks.png")

matplotlib is optional (`pip install 'videojepa[plots]'`); `pyplot()` says so when it is missing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from videojepa.errors import UserError
from videojepa.utils.files import atomic_savefig


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), or a UserError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plots need matplotlib: pip install matplotlib (or pip install 'videojepa[plots]'; "
                        "`make demo` installs it)") from None
    return plt


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_loss_curves(run_dirs: dict[str, str | Path], path: str | Path) -> None:
    """Every step's training loss of each run, one panel per run (their losses have different units:
    pixels for the pixel methods, features for the latent ones), with a moving average."""
    from videojepa.train.logger import read_metrics

    plt = pyplot()
    fig, axes = plt.subplots(1, len(run_dirs), figsize=(3.2 * len(run_dirs), 2.8), squeeze=False)
    for ax, (name, run_dir) in zip(axes[0], run_dirs.items()):
        records = [r for r in read_metrics(run_dir) if "loss" in r and len(r) == 2]  # the per-step lines
        steps = np.array([r["step"] for r in records])
        loss = np.array([r["loss"] for r in records], dtype=float)
        ax.plot(steps, loss, lw=0.6, alpha=0.4, color="C0")
        window = max(1, len(loss) // 20)
        smooth = _moving_average(loss, window)
        ax.plot(steps[len(steps) - len(smooth):], smooth, lw=1.5, color="C0")
        ax.set_title(f"{name} ({len(loss)} steps)", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("training loss", fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def plot_accuracy_vs_flops(rows: list[dict], chance: dict[str, float], budget: float, path: str | Path) -> None:
    """Probe top-1 against training FLOPs, one panel per task: a point per method, lines for the
    random-init encoder (no training) and chance. `rows` follow `videojepa.demo_report` ("flops", "label",
    "top1": {task: fraction}); a row with no FLOPs is drawn as a line."""
    plt = pyplot()
    tasks = list(chance)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for i, row in enumerate(rows):
            score = row["top1"].get(task)
            if score is None:
                continue
            if row["flops"] > 0:
                ax.scatter([row["flops"]], [100 * score], s=40, color=f"C{i}", label=row["label"], zorder=3)
            else:
                ax.axhline(100 * score, color=f"C{i}", ls="--", lw=1, label=row["label"])
        ax.axhline(100 * chance[task], color="grey", ls=":", lw=1, label="chance")
        ax.axvline(budget, color="black", lw=0.5, alpha=0.3)
        ax.set_xlim(0, 1.15 * budget)
        ax.set_ylim(0, 100)
        ax.set_title(f"{task}", fontsize=10)
        ax.set_xlabel("training FLOPs (grey line: the budget)", fontsize=8)
        ax.set_ylabel("probe top-1 (%)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def plot_masks_on_clip(clip: np.ndarray, masks: list[tuple[str, np.ndarray]], tubelet: int, patch: int,
                       path: str | Path, columns: int = 8) -> None:
    """A clip (T x H x W x 3, values 0..1) in the first row, then the clip under each target mask
    (T/tubelet x H/patch x W/patch booleans, True = masked): masked tokens are shaded, the rest is what
    the encoder sees. One column per token frame (its first video frame), at most `columns` of them."""
    plt = pyplot()
    token_frames = masks[0][1].shape[0] if masks else clip.shape[0] // tubelet
    shown = np.unique(np.linspace(0, token_frames - 1, min(columns, token_frames)).round().astype(int))
    rows = 1 + len(masks)
    fig, axes = plt.subplots(rows, len(shown), figsize=(1.3 * len(shown), 1.35 * rows), squeeze=False)
    tint = np.array([0.85, 0.1, 0.1])
    for r in range(rows):
        label, mask = ("clip", None) if r == 0 else masks[r - 1]
        for c, t in enumerate(shown):
            frame = clip[t * tubelet]
            if mask is not None:
                pixels = np.kron(mask[t].astype(float), np.ones((patch, patch)))[..., None]  # token -> pixels
                frame = frame * (1 - 0.7 * pixels) + 0.7 * pixels * tint
                ratio = mask.mean()
            ax = axes[r, c]
            ax.imshow(frame, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label if mask is None else f"{label}\n{ratio:.0%} masked", fontsize=6)
            if r == 0:
                ax.set_title(f"frame {t * tubelet}", fontsize=7)
    fig.suptitle("red = target tokens (predicted), clear = context (what the encoder sees)", fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
