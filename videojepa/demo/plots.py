"""Pictures of pretraining runs (PNG files, matplotlib's file-only Agg backend).

    plot_loss_curves({"vjepa": "runs/demo/runs/vjepa"}, "loss.png")          # from each run's metrics.jsonl
    plot_accuracy_vs_flops(results, "acc.png")                                  # demo results.json

The masks drawn on a clip (the demo's masks.png) are `videojepa.masks.plot.draw_masks`. matplotlib is
optional (`pip install 'videojepa[plots]'`); `videojepa.utils.plotting.pyplot()` says so when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from videojepa.demo.report import PROTOCOL_LABELS
from videojepa.train.logger import read_metrics
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


def plot_accuracy_vs_flops(results: dict, path: str | Path) -> None:
    """Probe top-1 against training FLOPs: one panel per task (columns) and protocol (rows), a curve per method
    from the random-init encoder (0 FLOPs) through its snapshots to its final encoder, the budget as a grey
    vertical line and chance as a dotted one. `results` is the demo's results.json document (its "curves");
    a protocol measured only at the ends (the attentive probe) gets its two points joined by a dashed line."""
    plt = pyplot()
    tasks, protocols = list(results["chance"]), results["protocols"]
    budget, curves = results["budget"]["flops"], results["curves"]

    fig, axes = plt.subplots(
        len(protocols), len(tasks), figsize=(4.4 * len(tasks), 3.0 * len(protocols)), squeeze=False, sharex=True
    )
    for r, kind in enumerate(protocols):
        for c, task in enumerate(tasks):
            ax = axes[r][c]
            drawn = 0
            for i, curve in enumerate(curves.values()):
                points = [p for p in curve["points"] if p["top1"].get(kind, {}).get(task) is not None]
                if not points:
                    continue
                drawn += 1
                x = [p["flops"] for p in points]
                y = [100 * p["top1"][kind][task] for p in points]
                ends_only = len(points) < len(curve["points"])
                ax.plot(
                    x, y, ls="--" if ends_only else "-", marker="o", ms=3.5, lw=1.3, color=f"C{i}", label=curve["label"]
                )
            if not drawn:
                ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", color="grey", fontsize=8)
            ax.axhline(100 * results["chance"][task], color="grey", ls=":", lw=1, label="chance")
            ax.axvline(budget, color="black", lw=0.5, alpha=0.3)
            ax.set_xlim(-0.02 * budget, 1.08 * budget)
            ax.set_title(f"{task}, {PROTOCOL_LABELS.get(kind, kind)} probe", fontsize=9)
            ax.tick_params(labelsize=7)
            if c == 0:
                ax.set_ylabel("top-1 (%)", fontsize=8)
            if r == len(protocols) - 1:
                ax.set_xlabel("training FLOPs (grey line: the budget)", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
