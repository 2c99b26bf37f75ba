"""Localisation results: `results.json`, a Markdown summary and a picture of validation keyframes, in the run dir.

results.json (schema "videojepa.localize/1"):

    {
      "schema": "videojepa.localize/1",
      "created": "2025-01-01T12:00:00+00:00",
      "checkpoint": "runs/vjepa" | "none",
      "encoder": {"name", "embed_dim", "depth", "num_heads", "patch_size", "tubelet_size", "pos_embed",
                  "params", "random_init"},
      "probe": {"layers", "feature_dim", "precision", "dropout", "roi": {"resolution", "sampling_ratio", "aligned"}},
      "protocol": {"frames_per_clip", "frame_step", "fps", "crop_size", "time_offset", "detection_threshold",
                   "boxes": "proposals" | "groundtruth", "iou_threshold": 0.5},
      "data": {"videos", "train", "val", "labelmap", "val_proposals", "train_excluded", "val_excluded"},
      "counts": {"classes",
                 "train": {"rows", "excluded_rows", "unmapped_rows", "keyframes", "boxes"},
                 "val": {"rows", "excluded_rows", "unmapped_rows", "keyframes", "groundtruth_boxes",
                         "proposals_read", "proposals_below_threshold", "boxes_evaluated"}},
      "mAP": 0.42,                         # frame mAP at IoU 0.5 of the evaluated boxes (fraction, 0..1)
      "chance_mAP": 0.21,                  # every box scored with the training class frequencies
      "mAP_groundtruth_boxes": 0.5 | null, # the same head on the ground-truth boxes (null without proposals)
      "classes": [{"id", "name", "ap", "chance_ap", "ap_groundtruth_boxes", "num_groundtruth", "num_train"}],
                                           # ap null for a class without validation ground truth (not in the mean)
      "optim": {"epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "warmup_lr", "min_lr", "betas",
                "eps", "steps"},
      "train_loss": [...],                 # mean BCE of each epoch
      "detections": "detections.csv",      # every (evaluated box, class) score, AVA's submission layout
      "picture": "keyframes.png" | null,
      "seconds": {"features", "train", "eval", "total"},
      "config": {...}
    }
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from videojepa.utils.files import atomic_savefig, write_json_and_markdown

SCHEMA = "videojepa.localize/1"
TOP_KEYS = (
    "schema",
    "created",
    "checkpoint",
    "encoder",
    "probe",
    "protocol",
    "data",
    "counts",
    "mAP",
    "chance_mAP",
    "mAP_groundtruth_boxes",
    "classes",
    "optim",
    "train_loss",
    "detections",
    "picture",
    "seconds",
    "config",
)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def markdown_summary(results: dict) -> str:
    enc, probe, p, c = results["encoder"], results["probe"], results["protocol"], results["counts"]
    name = enc.get("name") or f"vit {enc['embed_dim']}x{enc['depth']}"
    step = f"{p['fps']:g} fps" if p.get("fps") else str(p["frame_step"])
    roi = probe["roi"]
    lines = [
        f"Encoder: {results['checkpoint']} ({name}{', random init' if enc.get('random_init') else ''}); "
        f"layers {probe['layers']} ({probe['feature_dim']} channels), RoIAlign {roi['resolution']}x"
        f"{roi['resolution']} (aligned={roi['aligned']}) + max, linear head\n",
        "| frame mAP@0.5 | chance | ground-truth boxes | boxes evaluated | keyframes | train boxes | frames x step "
        "| crop |",
        "|---|---|---|---|---|---|---|---|",
        f"| {_pct(results['mAP'])} | {_pct(results['chance_mAP'])} | {_pct(results['mAP_groundtruth_boxes'])} "
        f"| {c['val']['boxes_evaluated']} ({p['boxes']}"
        + (f", score >= {p['detection_threshold']:g}" if p["boxes"] == "proposals" else "")
        + f") | {c['val']['keyframes']} | {c['train']['boxes']} | {p['frames_per_clip']} x {step} | {p['crop_size']} |",
        "",
        "Per class (AP %; '-': no validation ground truth, left out of the mean):",
        "",
        "| id | class | AP | chance | ground-truth boxes | val boxes | train boxes |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {k['id']} | {k['name']} | {_pct(k['ap'])} | {_pct(k['chance_ap'])} | {_pct(k['ap_groundtruth_boxes'])} "
        f"| {k['num_groundtruth']} | {k['num_train']} |"
        for k in results["classes"]
    ]
    return "\n".join(lines) + "\n"


def check_results(results: dict) -> None:
    """Raise ValueError if `results` does not follow the documented schema."""
    if results.get("schema") != SCHEMA:
        raise ValueError(f"schema must be {SCHEMA!r}, got {results.get('schema')!r}")
    missing = [k for k in TOP_KEYS if k not in results]
    if missing:
        raise ValueError(f"results miss keys: {', '.join(missing)}")
    if not 0.0 <= results["mAP"] <= 1.0:
        raise ValueError(f"mAP must be a fraction, got {results['mAP']}")


def write_results(run_dir: str | Path, results: dict) -> tuple[Path, Path]:
    """results.json and results.md, atomically."""
    check_results(results)
    return write_json_and_markdown(run_dir, results, markdown_summary(results))


def draw_keyframes(path: Path, task, scores: np.ndarray, clips, report) -> Path | None:
    """A grid of validation keyframes (evenly spread over the set) with their ground-truth boxes (green, class
    names) and the top-scored (evaluated box, class) predictions (orange, class and score). None without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    val, names = task.val, task.labelmap
    class_ids = list(names)
    groups = val.per_keyframe()
    with_gt = [f for f, rows in enumerate(groups) if (~np.isfinite(val.detector_score[rows])).any()]
    chosen = [
        with_gt[i] for i in np.linspace(0, len(with_gt) - 1, min(report.pictures, len(with_gt))).round().astype(int)
    ]
    if not chosen:
        return None
    truth: dict[str, list] = {}
    for row in task.val_rows:
        if row.box is not None:
            truth.setdefault(row.key, []).append(row)
    cols = min(4, len(chosen))
    rows = -(-len(chosen) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, f in zip(axes.flat, chosen):
        kf = val.keyframes[f]
        image = clips.keyframe_image(f).numpy()
        h, w = image.shape[:2]
        ax.imshow(image)
        for row in truth.get(kf.key, []):
            _box(ax, row.box, w, h, "lime", names.get(row.action_id, str(row.action_id)), top=True)
        evaluated = [i for i in groups[f] if val.evaluated[i]]
        pairs = sorted(((scores[i, c], i, c) for i in evaluated for c in range(len(class_ids))), reverse=True)
        labels: dict[int, list[str]] = {}  # one rectangle per box, its top-scored classes under it
        for s, i, c in pairs[: report.boxes_per_picture]:
            labels.setdefault(i, []).append(f"{names[class_ids[c]]} {s:.2f}")
        for i, text in labels.items():
            _box(ax, val.boxes[i], w, h, "orange", "\n".join(text), top=False)
        ax.set_title(f"{kf.video_id} @ {kf.timestamp}s", fontsize=8)
    clips.close()
    fig.suptitle("validation keyframes: ground truth (green), top-scored predictions (orange)", fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)
    return path


def _box(ax, box, w, h, colour, label, top: bool) -> None:
    import matplotlib.patches as patches

    x1, y1, x2, y2 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1.5))
    ax.text(
        x1,
        y1 if top else y2,
        label,
        color="black",
        fontsize=6,
        va="bottom" if top else "top",
        bbox={"facecolor": colour, "alpha": 0.7, "pad": 1, "linewidth": 0},
    )
