"""Scoring a classifier as it is (no training): what `videojepa evaluate PATH --data LIST` runs.

    model = load_classifier("models/vjepa2-vitl-ssv2")
    results = evaluate_classifier(model, "ssv2_val.csv", batch_size=4)     # top1, top5, confusion, ...
    write_evaluation("runs/evaluate", results)                              # results.json + results.md

The clips are prepared as the classifier's protocol says (`videojepa.classifiers.ClassifierProtocol`: frames,
frame step or fps, crop, mean/std, clips x views, how views are averaged), falling back to its encoder card
and then to the data defaults; `overrides` (DataConfig keys) win. Labels: when both the list and the
classifier name their classes, the list's labels are matched to the classifier's by name; otherwise integer
labels are the classifier's class indices. Unreadable files are excluded from the score and listed.

results.json (schema "videojepa.evaluate/1"): {"schema", "created", "classifier": path, "source",
"encoder": {...}, "head", "protocol": {frames_per_clip, frame_step, fps, crop_size, num_clips, num_views,
eval_resize_ratio, joint_clips, average}, "data": path, "num_classes", "classes", "num_val", "excluded" (count),
"chance", "top1", "top5" (null for <= 5 classes), "confusion" ([true][predicted], up to 20 classes),
"labels": "by name" | "by index", "seconds"}.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm import tqdm

from videojepa.data.build import build_dataset
from videojepa.data.config import DataConfig
from videojepa.data.loader import build_loader
from videojepa.errors import UserError
from videojepa.eval.encoders import accuracy
from videojepa.utils.files import write_json_and_markdown

SCHEMA = "videojepa.evaluate/1"
CONFUSION_MAX_CLASSES = 20


def protocol_data(model, overrides: dict | None = None) -> DataConfig:
    """The evaluation data settings of a classifier's protocol (unset fields: DataConfig's defaults)."""
    p = model.protocol
    values = {
        "frames_per_clip": p.frames,
        "frame_step": p.frame_step,
        "fps": p.fps,
        "crop_size": p.crop,
        "mean": p.mean,
        "std": p.std,
        "num_clips": p.num_clips,
        "num_views": p.num_views,
        "eval_resize_ratio": p.resize_ratio,
    }
    values = {k: v for k, v in values.items() if v is not None}
    values.update(overrides or {})
    try:
        return DataConfig(**values)
    except Exception as err:  # pydantic's ValidationError: name the first bad key
        raise UserError(f"evaluation protocol {values}: {str(err).splitlines()[0]}") from None


def match_labels(dataset, model) -> str:
    """Make the dataset's labels the classifier's class indices (in place); returns how they were matched."""
    names, ours = list(dataset.classes), list(model.classes)
    labels = [e.label for e in dataset.entries]
    if min(labels, default=-1) < 0:
        raise UserError(f"{dataset.source}: some files have no label; evaluation needs a labelled list or folder")
    if names and ours:
        unknown = sorted(set(names) - set(ours))
        if unknown:
            raise UserError(
                f"{dataset.source}: class names {', '.join(map(repr, unknown[:3]))} are not among the classifier's "
                f"{len(ours)} ({', '.join(map(repr, ours[:3]))}, ...): name classes as the classifier does, or give "
                f"integer labels in its order"
            )
        for e in dataset.entries:
            e.label = ours.index(names[e.label])
        dataset.classes = ours
        return "by name"
    if max(labels) >= model.num_classes:
        raise UserError(f"{dataset.source}: label {max(labels)}, but the classifier has {model.num_classes} classes")
    return "by index"


@torch.no_grad()
def evaluate_classifier(
    model,
    data: str | Path,
    batch_size: int = 4,
    overrides: dict | None = None,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    progress: bool = True,
) -> dict:
    """Top-1 / top-5 of `model` (a `VideoClassifier`) on the labelled list or folder `data`."""
    start = time.perf_counter()
    cfg = protocol_data(model, overrides)
    dataset = build_dataset(str(data), cfg, train=False, key="--data", on_bad="exclude")
    matched = match_labels(dataset, model)
    device = torch.device(device)
    model = model.to(device).eval()
    loader = build_loader(dataset, batch_size, cfg, seed=0, drop_last=False, shuffle=False)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    all_logits, all_labels = [], []
    for batch in tqdm(loader, desc="evaluate", unit="batch", leave=False, disable=not progress or None):
        keep = batch["index"] >= 0  # an unreadable file comes back with index -1: excluded, counted
        if not keep.any():
            continue
        with autocast:
            all_logits.append(model(batch["video"][keep].to(device)).float().cpu())
        all_labels.append(batch["label"][keep])
    if not all_logits:
        raise UserError(f"{data}: none of the {len(dataset)} files could be read")
    logits, labels = torch.cat(all_logits), torch.cat(all_labels).long()
    C = model.num_classes
    counts = torch.bincount(labels, minlength=C)
    result = {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": str(data),
        "num_classes": C,
        "classes": list(model.classes) or [str(i) for i in range(C)],
        "labels": matched,
        "protocol": {
            "frames_per_clip": cfg.frames_per_clip,
            "frame_step": None if cfg.fps else cfg.frame_step,
            "fps": cfg.fps,
            "crop_size": cfg.crop_size,
            "num_clips": cfg.num_clips,
            "num_views": cfg.num_views,
            "eval_resize_ratio": cfg.eval_resize_ratio,
            "joint_clips": model.protocol.joint_clips,
            "average": model.protocol.average,
        },
        "num_val": len(labels),
        "excluded": len(dataset) - len(labels),
        "chance": 1.0 / C,
        "majority": float(counts.max() / counts.sum()),
        "top1": float(accuracy(logits, labels, 1)),
        "top5": float(accuracy(logits, labels, 5)) if C > 5 else None,
        "seconds": round(time.perf_counter() - start, 3),
    }
    if C <= CONFUSION_MAX_CLASSES:
        result["confusion"] = torch.bincount(labels * C + logits.argmax(-1), minlength=C * C).view(C, C).tolist()
    return result


def markdown_table(results: dict) -> str:
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}"  # noqa: E731
    p = results["protocol"]
    step = f"{p['fps']:g} fps" if p.get("fps") else f"step {p['frame_step']}"
    views = f"{p['num_clips']} clip(s) x {p['num_views']} view(s), {p['average']} averaged"
    lines = [
        f"Evaluated: {results.get('classifier', 'classifier')} on {results['data']} ({results['num_classes']} classes, "
        f"labels matched {results['labels']})\n",
        f"Protocol: {p['frames_per_clip']} frames ({step}) at {p['crop_size']} px, {views}\n",
        "| top-1 | top-5 | chance | videos | excluded |",
        "|---|---|---|---|---|",
        f"| {pct(results['top1'])} | {pct(results['top5'])} | {pct(results['chance'])} | {results['num_val']} | "
        f"{results['excluded']} |",
    ]
    return "\n".join(lines) + "\n"


def write_evaluation(out: str | Path, results: dict) -> tuple[Path, Path]:
    """results.json and results.md in `out` (atomically)."""
    Path(out).mkdir(parents=True, exist_ok=True)
    return write_json_and_markdown(out, results, markdown_table(results))
