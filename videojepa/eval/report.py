"""Probe results: `results.json` and a Markdown table, written into the run directory.

results.json (schema "videojepa.probe/1"):

    {
      "schema": "videojepa.probe/1",
      "created": "2025-01-01T12:00:00+00:00",        # UTC, ISO 8601
      "checkpoint": "runs/vjepa" | "none",
      "encoder": {"name", "embed_dim", "depth", "num_heads", "patch_size", "tubelet_size", "pos_embed",
                  "params", "random_init": bool},
      "probe": {"kind", "heads", "queries", "layers", "feature_dim", "precision",
                "knn_k", "knn_temperature"},                        # kNN keys only for kind knn
      "optim": {"epochs", "batch_size", "lr": [...], "weight_decay": [...], "betas"},   # absent for knn
      "features": {"cache", "augmentations", "dtype"},
      "tasks": [
        {
          "name": "appearance", "train": path, "val": path,
          "num_classes": 4, "num_train": 360, "num_val": 120,   # num_val: validation videos scored
          "protocol": {"frames_per_clip", "frame_step", "fps", "num_clips", "num_views", "crop_size"},
          "chance": 0.25,                          # 1 / num_classes
          "majority": 0.27,                        # share of the most frequent class in val
          "top1": 0.93,                            # best cell's validation top-1 (fraction, 0..1)
          "top5": 1.0 | null,                      # null when num_classes <= 5
          "best": {"lr", "weight_decay"} | {"k", "temperature"},
          "cells": [                               # every probe of the grid, lr-major
            {"lr", "weight_decay", "top1", "top5", "val_loss", "train_loss"}
                                                     # knn: {"k", "temperature", "top1", "top5"}
          ],
          "classes": ["rotate_cw", ...],           # label names in label order (numbers when the data has none)
          "confusion": [[...], ...],               # best cell, validation videos: [true label][predicted label]
          "bad_files": {"train": 0, "val": 0},     # unreadable files: train ones replaced by other files (as
                                                   # found while decoding), val ones excluded from the score
          "val_excluded": [path, ...],             # the excluded validation files
          "cached": {"train": bool, "val": bool},  # features read from an existing cache file
          "seconds": {"features", "train", "eval"}
        }
      ],
      "seconds": 12.3,                             # the whole run
      "config": {...}                              # the resolved config
    }

results.md: one row per task (top-1 in %, chance, the best cell's settings, the protocol), then the
full grid of each task.
"""

from __future__ import annotations

from pathlib import Path

from videojepa.utils.files import write_json_and_markdown

SCHEMA = "videojepa.probe/1"
TASK_KEYS = (
    "name",
    "train",
    "val",
    "num_classes",
    "num_train",
    "num_val",
    "protocol",
    "chance",
    "majority",
    "top1",
    "top5",
    "best",
    "cells",
    "classes",
    "confusion",
    "bad_files",
    "val_excluded",
    "cached",
    "seconds",
)
TOP_KEYS = ("schema", "created", "checkpoint", "encoder", "probe", "features", "tasks", "seconds", "config")


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _setting(best: dict) -> str:
    if "lr" in best:
        return f"lr {best['lr']:g}, wd {best['weight_decay']:g}"
    return f"k {best['k']}, T {best['temperature']:g}"


def markdown_table(results: dict) -> str:
    """Top-1 per task with the probe settings, then every cell of each task's grid."""
    enc, probe = results["encoder"], results["probe"]
    name = enc.get("name") or f"vit {enc['embed_dim']}x{enc['depth']}"
    lines = [
        f"Encoder: {results['checkpoint']} ({name}{', random init' if enc.get('random_init') else ''}); "
        f"probe: {probe['kind']}, layers {probe['layers']}"
        + (f", {probe['heads']} heads" if probe["kind"].startswith("attentive") else "")
        + "\n",
        "| task | top-1 | chance | probe | best setting | clips x views | frames x step | crop | train / val |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in results["tasks"]:
        p = t["protocol"]
        step = f"{p['fps']:g} fps" if p.get("fps") else str(p["frame_step"])
        lines.append(
            f"| {t['name']} | {_pct(t['top1'])} | {_pct(t['chance'])} | {probe['kind']} | {_setting(t['best'])} "
            f"| {p['num_clips']} x {p['num_views']} | {p['frames_per_clip']} x {step} | {p['crop_size']} "
            f"| {t['num_train']} / {t['num_val']} |"
        )
    for t in results["tasks"]:
        if t["val_excluded"]:
            lines += [
                "",
                f"{t['name']}: {len(t['val_excluded'])} unreadable validation file(s) excluded from the "
                f"score: " + ", ".join(t["val_excluded"][:5]) + (", ..." if len(t["val_excluded"]) > 5 else ""),
            ]
    for t in results["tasks"]:
        if len(t["classes"]) <= 20:
            lines += [
                "",
                f"Per-class top-1 for {t['name']} (best cell, validation; %): "
                + ", ".join(
                    f"{name} {_pct(row[i] / max(sum(row), 1))}"
                    for i, (name, row) in enumerate(zip(t["classes"], t["confusion"]))
                ),
            ]
    for t in results["tasks"]:
        if len(t["cells"]) < 2:
            continue
        lines += ["", f"Grid for {t['name']} (validation top-1, %):", ""]
        lrs = sorted({c["lr"] for c in t["cells"]}, reverse=True)
        wds = sorted({c["weight_decay"] for c in t["cells"]})
        top1 = {(c["lr"], c["weight_decay"]): c["top1"] for c in t["cells"]}
        lines += ["| lr \\ wd | " + " | ".join(f"{wd:g}" for wd in wds) + " |", "|---" * (len(wds) + 1) + "|"]
        lines += [f"| {lr:g} | " + " | ".join(_pct(top1.get((lr, wd))) for wd in wds) + " |" for lr in lrs]
    return "\n".join(lines) + "\n"


def check_results(results: dict) -> None:
    """Raise ValueError if `results` does not follow the documented schema."""
    if results.get("schema") != SCHEMA:
        raise ValueError(f"schema must be {SCHEMA!r}, got {results.get('schema')!r}")
    missing = [k for k in TOP_KEYS if k not in results]
    missing += [f"tasks.{i}.{k}" for i, t in enumerate(results["tasks"]) for k in TASK_KEYS if k not in t]
    if missing:
        raise ValueError(f"results miss keys: {', '.join(missing)}")
    for t in results["tasks"]:
        if not 0.0 <= t["top1"] <= 1.0 or not t["cells"]:
            raise ValueError(f"task {t['name']}: top1 must be a fraction and cells non-empty")


def write_results(run_dir: str | Path, results: dict) -> tuple[Path, Path]:
    """Write results.json and results.md atomically; returns their paths."""
    check_results(results)
    return write_json_and_markdown(run_dir, results, markdown_table(results))
