"""AVA frame-level mean average precision, computed as the official evaluator does.

    from videojepa.eval.ava import frame_map
    frame_map("ava_val_v2.2.csv", "detections.csv", "ava_action_list_v2.2_for_activitynet_2019.pbtxt")
    # {"mAP": 0.258, "per_class": {1: 0.41, 3: 0.12, ...}}

The rules are those of the official AVA evaluator (ActivityNet's `Evaluation/get_ava_performance.py`, the
PASCAL VOC metric of TensorFlow's object-detection evaluation that it runs; tests/fixtures holds numbers it
produced on random cases, and tests/test_ava_eval.py compares with them):

- Only classes of the label map count: rows of other classes are dropped from both files.
- The keyframes scored are those the ground-truth file lists (a `video_id,timestamp` row lists a keyframe with
  no boxes); detections at other keyframes are ignored. Keyframes in `excluded` are dropped from both files.
- Per keyframe at most the 50 highest-scored detections are kept (all classes together), then sorted by score.
- Per keyframe and class, each detection in that order is compared with the ground-truth box it overlaps most
  (intersection over union, boxes in normalised coordinates, no +1 on widths; the first such box on ties): at
  IoU >= 0.5 and if that box is not matched yet, it is a true positive and matches it; otherwise it is a
  false positive, even when another ground-truth box it overlaps enough is still free. A detection with an
  empty box (x1 >= x2 or y1 >= y2) is dropped.
- Per class, detections of all keyframes sorted by score give the precision-recall curve; AP is the area under
  it with every point, precision made non-increasing from the right (VOC2010+, not 11-point interpolation).
  A class with ground truth and no detection has AP 0.
- mAP is the mean AP over the label-map classes that have ground truth; the others are left out.

Ties between scores are ordered by position in the file (the official code leaves their order to numpy's
sort); they change AP only where a true and a false positive share a score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from videojepa.data.ava import BoxRow, read_annotations, read_detections, read_excluded, read_labelmap

MAX_DETECTIONS_PER_FRAME = 50  # the official evaluator's cap per keyframe (`read_csv(..., capacity=50)`)


def frame_map(
    groundtruth_csv: str | Path,
    detections_csv: str | Path,
    labelmap: str | Path,
    excluded: str | Path | None = None,
) -> dict:
    """Frame mAP at IoU 0.5 of AVA-layout files: {"mAP": float, "per_class": {class_id: AP}}; `per_class` holds
    the classes of the label map that have ground truth (those the mean runs over). `excluded`: an
    excluded-timestamps CSV (`video_id,timestamp`)."""
    result = evaluate(
        read_annotations(groundtruth_csv),
        read_detections(detections_csv),
        read_labelmap(labelmap),
        read_excluded(excluded) if excluded is not None else (),
    )
    return {"mAP": result["mAP"], "per_class": result["per_class"]}


def evaluate(
    groundtruth: Iterable[BoxRow],
    detections: Iterable[BoxRow],
    classes: Iterable[int],
    excluded: Iterable[str] = (),
    iou_threshold: float = 0.5,
    max_per_frame: int = MAX_DETECTIONS_PER_FRAME,
) -> dict:
    """`frame_map` on parsed rows. Returns {"mAP", "per_class": {id: AP}, "num_groundtruth": {id: boxes},
    "num_detections": {id: detections scored}, "frames": keyframes scored}."""
    classes, excluded = set(classes), set(excluded)
    gt_boxes: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    frames = set()
    for row in groundtruth:
        key = row.key
        if key in excluded:
            continue
        frames.add(key)
        if row.action_id in classes:
            gt_boxes[key][row.action_id].append(row.box)
    num_gt = {c: sum(len(per_class.get(c, ())) for per_class in gt_boxes.values()) for c in sorted(classes)}

    per_frame: dict[str, list[BoxRow]] = defaultdict(list)
    for row in detections:
        if row.action_id in classes and row.key in frames:
            per_frame[row.key].append(row)
    scores, hits = defaultdict(list), defaultdict(list)
    for key, rows in per_frame.items():
        rows = sorted(rows, key=lambda r: -r.score)[:max_per_frame]  # stable: ties keep the file's order
        by_class = defaultdict(list)
        for row in rows:
            by_class[row.action_id].append(row)
        for class_id, class_rows in by_class.items():
            s, tp = match_frame(class_rows, gt_boxes[key].get(class_id, []), iou_threshold)
            scores[class_id].append(s)
            hits[class_id].append(tp)

    per_class = {}
    for class_id, count in num_gt.items():
        if count == 0:
            continue  # no ground truth: left out of the mean
        if scores[class_id]:
            s, tp = np.concatenate(scores[class_id]), np.concatenate(hits[class_id])
        else:
            s, tp = np.zeros(0), np.zeros(0, dtype=bool)
        per_class[class_id] = average_precision(s, tp, count)
    return {
        "mAP": float(np.mean(list(per_class.values()))) if per_class else float("nan"),
        "per_class": per_class,
        "num_groundtruth": num_gt,
        "num_detections": {c: int(sum(len(s) for s in scores[c])) for c in sorted(classes)},
        "frames": len(frames),
    }


def match_frame(detections: list[BoxRow], groundtruth: list, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores and true-positive flags of one keyframe's detections of one class, in the given order (highest
    score first); empty boxes are dropped. Each detection goes to the ground-truth box it overlaps most."""
    detections = [d for d in detections if d.box[0] < d.box[2] and d.box[1] < d.box[3]]
    scores = np.array([d.score for d in detections], dtype=np.float64)
    hit = np.zeros(len(detections), dtype=bool)
    if not detections or not groundtruth:
        return scores, hit
    overlaps = iou(np.array([d.box for d in detections], dtype=np.float64), np.array(groundtruth, dtype=np.float64))
    best = overlaps.argmax(1)
    taken = np.zeros(len(groundtruth), dtype=bool)
    for i, j in enumerate(best):
        if overlaps[i, j] >= iou_threshold and not taken[j]:
            hit[i] = taken[j] = True
    return scores, hit


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of (N, 4) and (M, 4) boxes (x1, y1, x2, y2), continuous coordinates
    (width = x2 - x1, as the official evaluator computes it on normalised boxes)."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda boxes: (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def average_precision(scores, is_hit, num_groundtruth: int) -> float:
    """Area under the precision-recall curve of detections ranked by score (every point; precision made
    non-increasing from the right, VOC2010+). 0 when there are no detections."""
    scores, is_hit = np.asarray(scores, dtype=np.float64), np.asarray(is_hit, dtype=bool)
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = is_hit[order].astype(np.float64)
    true_pos = np.cumsum(hits)
    precision = true_pos / np.arange(1, len(hits) + 1)
    recall = true_pos / num_groundtruth
    precision = np.concatenate([[0.0], precision, [0.0]])
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope: best precision at any higher recall
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))
