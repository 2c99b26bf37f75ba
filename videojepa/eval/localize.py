"""Frozen action localisation in AVA's protocol: what `videojepa localize CONFIG` runs.

    from videojepa.config.loader import load_config
    from videojepa.eval.localize import run_localization
    from videojepa.eval.localize_config import LocalizeConfig
    results = run_localization(load_config("demo/localize", ["probe.checkpoint=runs/vjepa"], schema=LocalizeConfig))

1. The boxes (`localize_task`): ground-truth boxes of the training keyframes with multi-hot targets; at the
   validation keyframes, the detector's proposals scored >= data.detection_threshold, and the ground truth.
2. Box features, once per keyframe for all its boxes (the encoder is frozen and the pooling has no
   parameters, so each box's feature is fixed): the clip centred on the keyframe goes through the encoder,
   the token maps of probe.layers are concatenated along channels and averaged over time, and each box is
   pooled by RoIAlign then a spatial max (`roi`). Cached on disk, keyed by everything they depend on.
3. The head: dropout and one linear layer, a sigmoid per class, binary cross-entropy, AdamW with a linear
   warmup then a cosine decay (Table 7 of the V-JEPA paper in the `eval/ava` preset).
4. Evaluation: every evaluated box scored for every class, written as detections.csv in AVA's submission
   layout and scored with `videojepa.eval.ava.frame_map` (the official evaluator's rules). Beside it, the
   chance reference (every box scored with the training frequency of each class, ties broken at random; the
   mean over 5 draws) and, when proposals are given, the mAP of the ground-truth boxes (no detector errors).
5. results.json / results.md and keyframes.png in run.dir (`localize_report`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from videojepa.config.loader import save_config, to_dict
from videojepa.data.ava import BoxRow
from videojepa.data.keyframes import KeyframeClips
from videojepa.eval.ava import evaluate, frame_map
from videojepa.eval.encoders import check_protocol, encoder_protocol, load_task_encoder
from videojepa.eval.features import DTYPES, FeatureSet, cache_key, encode, load_or_extract, prepare_encoder
from videojepa.eval.localize_config import LocalizeConfig
from videojepa.eval.localize_report import SCHEMA, draw_keyframes, write_results
from videojepa.eval.localize_task import BoxSet, LocalizationTask, build_task
from videojepa.eval.roi import roi_features, token_map
from videojepa.utils.device import resolve_device
from videojepa.utils.files import atomic_path
from videojepa.utils.precision import resolve_precision

CHANCE_DRAWS = 5  # random tie-breaks averaged for the chance reference


def keyframe_dataset(boxes: BoxSet, data) -> KeyframeClips:
    return KeyframeClips(
        boxes.keyframes,
        data.frames_per_clip,
        data.frame_step,
        data.crop_size,
        tuple(data.mean),
        tuple(data.std),
        fps=data.fps,
        decoder=data.decoder,
        decode_threads=data.decode_threads,
    )


@torch.no_grad()
def box_features(encoder, boxes: BoxSet, data, cfg: LocalizeConfig, desc: str) -> torch.Tensor:
    """(K, D x layers) pooled features of every box, each keyframe's clip encoded once."""
    dataset = keyframe_dataset(boxes, data)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.features.batch_size, shuffle=False, num_workers=data.num_workers
    )
    groups = boxes.per_keyframe()
    grid = encoder.grid(data.frames_per_clip, data.crop_size, data.crop_size)
    scale = torch.tensor([grid[2], grid[1], grid[2], grid[1]], dtype=torch.float64)  # fractions -> token units
    out = None
    try:
        for batch in tqdm(loader, desc=desc, leave=False, disable=None, unit="batch"):
            maps = token_map(encode(encoder, batch["video"], cfg.probe.layers, cfg.probe.precision), grid)
            for feature_map, frame in zip(maps, batch["index"].tolist()):
                rows = groups[frame]
                pooled = roi_features(
                    feature_map,
                    torch.from_numpy(boxes.boxes[rows]) * scale,
                    cfg.roi.resolution,
                    sampling_ratio=cfg.roi.sampling_ratio,
                    aligned=cfg.roi.aligned,
                )
                if out is None:
                    out = torch.empty(len(boxes), pooled.shape[1], dtype=DTYPES[cfg.features.dtype])
                out[torch.from_numpy(rows)] = pooled.cpu().to(out.dtype)
    finally:
        dataset.close()
    return out


def cached_box_features(encoder, identity: dict, boxes: BoxSet, data, cfg: LocalizeConfig, split: str) -> torch.Tensor:
    """`box_features`, read from the feature cache when it holds them for these inputs."""
    key = cache_key(
        encoder=identity,
        keyframes=[(k.path, k.frame, k.num_frames) for k in boxes.keyframes],
        frame=boxes.frame.tolist(),
        boxes=boxes.boxes.tolist(),
        protocol={k: getattr(data, k) for k in ("frames_per_clip", "frame_step", "fps", "crop_size", "mean", "std")},
        layers=cfg.probe.layers,
        precision=cfg.probe.precision,
        roi=cfg.roi.model_dump(),
        dtype=cfg.features.dtype,
    )
    path = Path(cfg.features.dir or Path(cfg.run.dir) / "features") / f"boxes-{split}-{key}.safetensors"

    def compute() -> FeatureSet:
        feats = box_features(encoder, boxes, data, cfg, f"{split} keyframes")
        return FeatureSet(feats[None], torch.arange(len(boxes))[None])

    found, _ = load_or_extract(path, key, compute)
    return found.features[0]


def lr_at(step: int, total: int, warmup: int, optim) -> float:
    """Linear warmup from warmup_lr to lr over `warmup` steps, then cosine to min_lr at `total`."""
    if step < warmup:
        return optim.warmup_lr + (optim.lr - optim.warmup_lr) * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return optim.min_lr + (optim.lr - optim.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def train_head(features: torch.Tensor, targets: torch.Tensor, cfg: LocalizeConfig, device) -> tuple[nn.Module, list]:
    """Dropout + linear layer trained with BCE on the cached box features; returns it and the mean loss of
    each epoch."""
    o = cfg.optim
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.run.seed)
        head = nn.Sequential(nn.Dropout(cfg.probe.dropout), nn.Linear(features.shape[1], targets.shape[1]))
        nn.init.normal_(head[1].weight, std=0.01)  # as SlowFast's heads
        nn.init.zeros_(head[1].bias)
    head = head.to(device).train()
    opt = torch.optim.AdamW(head.parameters(), lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    per_epoch = math.ceil(len(features) / o.batch_size)
    total, warmup = o.epochs * per_epoch, round(o.warmup_epochs * per_epoch)
    order_rng = torch.Generator().manual_seed(cfg.run.seed)
    losses, step = [], 0
    for _ in range(o.epochs):
        epoch_loss = 0.0
        for idx in torch.randperm(len(features), generator=order_rng).split(o.batch_size):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, o)
            x, y = features[idx].to(device).float(), targets[idx].to(device)
            loss = F.binary_cross_entropy_with_logits(head(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            epoch_loss += loss.item() * len(idx)
            step += 1
        losses.append(epoch_loss / len(features))
    return head.eval(), losses


@torch.no_grad()
def predict(head: nn.Module, features: torch.Tensor, device, batch: int = 4096) -> np.ndarray:
    """Sigmoid scores (K, classes)."""
    return torch.cat([torch.sigmoid(head(x.to(device).float())).cpu() for x in features.split(batch)]).numpy()


def detection_rows(boxes: BoxSet, scores: np.ndarray, class_ids: list[int]) -> list[BoxRow]:
    """One detection per (evaluated box, class), in AVA's submission layout's fields."""
    rows = []
    for i in np.flatnonzero(boxes.evaluated):
        kf = boxes.keyframes[boxes.frame[i]]
        box = tuple(float(v) for v in boxes.boxes[i])
        rows += [BoxRow(kf.video_id, kf.timestamp, 0, box, c, score=float(s)) for c, s in zip(class_ids, scores[i])]
    return rows


def write_detections(path: Path, rows: list[BoxRow]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(f"{r.video_id},{r.timestamp},{','.join(f'{v:.6f}' for v in r.box)},{r.action_id},{r.score:.6f}\n")


def chance_map(task: LocalizationTask, seed: int) -> dict:
    """Every evaluated box scored with each class's frequency among the training boxes, ties broken at random:
    the mean mAP and per-class AP over `CHANCE_DRAWS` draws."""
    frequency = task.train.targets.mean(0)
    val = task.val
    maps, per_class = [], {}
    for draw in range(CHANCE_DRAWS):
        jitter = np.random.default_rng([seed, draw]).uniform(0, 1e-9, (len(val), len(frequency)))
        result = evaluate(task.val_rows, detection_rows(val, frequency[None] + jitter, task.class_ids), task.class_ids)
        maps.append(result["mAP"])
        for c, ap in result["per_class"].items():
            per_class[c] = per_class.get(c, 0.0) + ap / CHANCE_DRAWS
    return {"mAP": float(np.mean(maps)), "per_class": per_class}


def run_localization(cfg: LocalizeConfig, log: Callable[[str], None] | None = print) -> dict:
    """Train the head on the configured encoder's box features and evaluate it; writes results into run.dir
    and returns them (schema in `localize_report`)."""
    log = log or (lambda _: None)
    start = time.perf_counter()
    run_dir = Path(cfg.run.dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # `auto` resolved here, so that config.yaml, results.json and the feature cache keys record what was used
    cfg.probe.precision = resolve_precision(cfg.probe.precision, resolve_device(cfg.run.device, "run.device"))
    save_config(cfg, run_dir / "config.yaml")
    encoder, info, identity = load_task_encoder(cfg.probe.checkpoint, cfg.model, cfg.run.seed)
    encoder = prepare_encoder(encoder, cfg.probe.precision).to(resolve_device(cfg.run.device, "run.device"))
    given = cfg.given_keys()
    data, taken = encoder_protocol(cfg.data, encoder.card, lambda key: f"data.{key}" in given)
    if taken:
        log("from the encoder card: " + ", ".join(f"data.{k}={v}" for k, v in taken.items()))
    check_protocol(encoder, data, "localization")
    device = next(encoder.parameters()).device
    seconds = {"features": 0.0, "train": 0.0, "eval": 0.0}

    task = build_task(data, log)
    c = task.counts
    log(
        f"localisation: {c['classes']} classes; train {c['train']['boxes']} boxes at {c['train']['keyframes']} "
        f"keyframes; val {c['val']['boxes_evaluated']} boxes evaluated at {c['val']['keyframes']} keyframes"
    )
    t = time.perf_counter()
    train_x = cached_box_features(encoder, identity, task.train, data, cfg, "train")
    val_x = cached_box_features(encoder, identity, task.val, data, cfg, "val")
    seconds["features"] = time.perf_counter() - t
    r = cfg.roi.resolution
    log(f"  box features {tuple(train_x.shape[1:])} (layers {cfg.probe.layers}, RoIAlign {r}x{r} + max)")

    t = time.perf_counter()
    head, losses = train_head(train_x, torch.from_numpy(task.train.targets), cfg, device)
    seconds["train"] = time.perf_counter() - t
    log(f"  trained the head for {cfg.optim.epochs} epochs: loss {losses[0]:.4f} -> {losses[-1]:.4f}")

    t = time.perf_counter()
    scores = predict(head, val_x, device)
    detections = run_dir / "detections.csv"
    write_detections(detections, detection_rows(task.val, scores, task.class_ids))
    main = frame_map(data.val, detections, data.labelmap, data.val_excluded)
    counted = evaluate(task.val_rows, [], task.class_ids)["num_groundtruth"]
    gt_boxes = None
    if data.val_proposals:  # the same head on the ground-truth boxes: the mAP without the detector's errors
        gt_only = BoxSet(task.val.keyframes, task.val.frame, task.val.boxes, evaluated=~task.val.evaluated)
        gt_boxes = evaluate(task.val_rows, detection_rows(gt_only, scores, task.class_ids), task.class_ids)
    chance = chance_map(task, cfg.run.seed)
    seconds["eval"] = time.perf_counter() - t
    log(f"  frame mAP@0.5 {main['mAP']:.4f} (chance {chance['mAP']:.4f})")

    picture = None
    if cfg.report.pictures:
        picture = draw_keyframes(run_dir / "keyframes.png", task, scores, keyframe_dataset(task.val, data), cfg.report)
    train_counts = task.train.targets.sum(0)
    classes = [
        {
            "id": cid,
            "name": name,
            "ap": main["per_class"].get(cid),
            "chance_ap": chance["per_class"].get(cid),
            "ap_groundtruth_boxes": gt_boxes["per_class"].get(cid) if gt_boxes else None,
            "num_groundtruth": counted[cid],
            "num_train": int(train_counts[i]),
        }
        for i, (cid, name) in enumerate(task.labelmap.items())
    ]
    p, d, o = cfg.probe, data, cfg.optim
    results = {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checkpoint": p.checkpoint,
        "encoder": info.model_dump(),
        "probe": {
            "layers": list(p.layers),
            "feature_dim": int(train_x.shape[1]),
            "precision": p.precision,
            "dropout": p.dropout,
            "roi": cfg.roi.model_dump(),
        },
        "protocol": {
            "frames_per_clip": d.frames_per_clip,
            "frame_step": d.frame_step,
            "fps": d.fps,
            "crop_size": d.crop_size,
            "time_offset": d.time_offset,
            "detection_threshold": d.detection_threshold,
            "boxes": "proposals" if d.val_proposals else "groundtruth",
            "iou_threshold": 0.5,
        },
        "data": {
            k: getattr(d, k)
            for k in ("videos", "train", "val", "labelmap", "val_proposals", "train_excluded", "val_excluded")
        },
        "counts": task.counts,
        "mAP": main["mAP"],
        "chance_mAP": chance["mAP"],
        "mAP_groundtruth_boxes": gt_boxes["mAP"] if gt_boxes else None,
        "classes": classes,
        "optim": {**o.model_dump(), "betas": list(o.betas), "steps": o.epochs * math.ceil(len(train_x) / o.batch_size)},
        "train_loss": losses,
        "detections": detections.name,
        "picture": picture.name if picture else None,
        "seconds": {**{k: round(v, 3) for k, v in seconds.items()}, "total": round(time.perf_counter() - start, 3)},
        "config": to_dict(cfg),
    }
    write_results(run_dir, results)
    return results
