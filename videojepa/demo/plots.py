"""Pictures of pretraining runs (PNG files, matplotlib's file-only Agg backend).

    plot_loss_curves({"vjepa": "runs/demo/runs/vjepa"}, "loss.png")          # from each run's metrics.jsonl
    plot_accuracy_vs_flops(results["rows"], results["chance"], budget, "acc.png")   # demo results rows

The masks drawn on a clip (the demo's masks.png) are `videojepa.masks.plot.draw_masks`. matplotlib is
optional (`pip install 'videojepa[plots]'`); `videojepa.utils.plotting.pyplot()` says so when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from videojepa.utils.files import atomic_savefig
from videojepa.utils.plotting import pyplot


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
        records = read_metrics(run_dir, kind="step")
        steps = np.array([r["step"] for r in records])
        loss = np.array([r["loss"] for r in records], dtype=float)
        ax.plot(steps, loss, lw=0.6, alpha=0.4, color="C0")
        window = max(1, len(loss) // 20)
        smooth = _moving_average(loss, window)
        ax.plot(steps[len(steps) - len(smooth) :], smooth, lw=1.5, color="C0")
        ax.set_title(f"{name} ({len(loss)} steps)", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("training loss", fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def plot_accuracy_vs_flops(rows: list[dict], chance: dict[str, float], budget: float, path: str | Path) -> None:
    """Probe top-1 against training FLOPs, one panel per task: a point per method, lines for the
    random-init encoder (no training) and chance. `rows` follow `videojepa.demo.report` ("flops", "label",
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
