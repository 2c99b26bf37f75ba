"""The boxes of a localisation task: what trains the head and what is evaluated, read from AVA-layout files.

    task = build_task(cfg.data, log=print)
    task.train.boxes, task.train.targets      # unique ground-truth boxes of the training keyframes, multi-hot
    task.val.boxes[task.val.evaluated]        # proposals scored >= data.detection_threshold (or ground truth)

Training boxes are the ground-truth boxes of the training annotations: the rows of one keyframe with the same
box are one person, whose targets are all the label-map classes of those rows (a person with no label-map
class stays, a negative for every class). Validation keyframes are those of the validation annotations (an
empty `video_id,timestamp` row lists one too); their boxes are the proposals at those keyframes scored at or
above the threshold (the boxes evaluated) and the ground-truth boxes (evaluated instead when no proposals file
is given, and otherwise scored too for the "ground-truth boxes" mAP, which leaves the detector out). Excluded
timestamps are dropped from both splits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from videojepa.data.ava import BoxRow, check_labels, read_annotations, read_excluded, read_labelmap, read_proposals
from videojepa.data.keyframes import Keyframe, locate_keyframes
from videojepa.errors import UserError


@dataclass
class BoxSet:
    """Boxes grouped by keyframe: box i lies in keyframes[frame[i]]; `targets` (K, classes) for training boxes;
    `evaluated` marks the boxes that are scored for the mAP, `detector_score` the proposals' scores (NaN for
    ground-truth boxes)."""

    keyframes: list[Keyframe]
    frame: np.ndarray  # (K,) int
    boxes: np.ndarray  # (K, 4) float: x1, y1, x2, y2 in [0, 1]
    targets: np.ndarray | None = None  # (K, C) float32
    evaluated: np.ndarray | None = None  # (K,) bool
    detector_score: np.ndarray | None = None  # (K,) float

    def __len__(self) -> int:
        return len(self.boxes)

    def per_keyframe(self) -> list[np.ndarray]:
        """The box indices of each keyframe, in keyframe order."""
        order = np.argsort(self.frame, kind="stable")
        return np.split(order, np.searchsorted(self.frame[order], np.arange(1, len(self.keyframes))))


@dataclass
class LocalizationTask:
    labelmap: dict[int, str]
    train: BoxSet
    val: BoxSet
    val_rows: list[BoxRow]  # the validation ground truth (excluded keyframes dropped), for the evaluator
    counts: dict = field(default_factory=dict)

    @property
    def class_ids(self) -> list[int]:
        return list(self.labelmap)


def read_rows(path, excluded_path, labelmap, policy: str) -> tuple[list[BoxRow], dict]:
    """Annotation rows of `path` minus excluded keyframes, checked against the label map."""
    rows = read_annotations(path)
    excluded = read_excluded(excluded_path) if excluded_path else set()
    kept = [r for r in rows if r.key not in excluded]
    kept, unmapped = check_labels(kept, labelmap, path, policy)
    return kept, {"rows": len(rows), "excluded_rows": len(rows) - len(kept) - unmapped, "unmapped_rows": unmapped}


def training_boxes(rows: list[BoxRow], keyframes: dict[str, Keyframe], class_ids: list[int]) -> BoxSet:
    """The unique boxes of each keyframe with their multi-hot targets."""
    column = {c: i for i, c in enumerate(class_ids)}
    people: dict[tuple, set] = {}
    for row in rows:
        if row.box is not None:
            people.setdefault((row.key, row.box), set()).add(row.action_id)
    frames = list(dict.fromkeys(key for key, _ in people))
    index = {key: i for i, key in enumerate(frames)}
    targets = np.zeros((len(people), len(class_ids)), dtype=np.float32)
    for i, actions in enumerate(people.values()):
        targets[i, [column[a] for a in actions if a in column]] = 1.0
    return BoxSet(
        [keyframes[k] for k in frames],
        np.array([index[key] for key, _ in people], dtype=np.int64),
        np.array([box for _, box in people], dtype=np.float64).reshape(-1, 4),
        targets,
    )


def validation_boxes(
    rows: list[BoxRow], proposals: list[BoxRow] | None, keyframes: dict[str, Keyframe], threshold: float
) -> tuple[BoxSet, int]:
    """Proposals at or above `threshold` at the validation keyframes (evaluated), then the unique ground-truth
    boxes (evaluated when there are no proposals). Returns the set and how many proposals fell below the
    threshold."""
    entries = []  # (key, box, evaluated, detector score)
    below = 0
    if proposals is not None:
        for row in proposals:
            if row.key in keyframes:
                if row.score >= threshold:
                    entries.append((row.key, row.box, True, row.score))
                else:
                    below += 1
    gt = list(dict.fromkeys((row.key, row.box) for row in rows if row.box is not None))
    entries += [(key, box, proposals is None, np.nan) for key, box in gt]
    frames = list(dict.fromkeys(key for key, *_ in entries))
    index = {key: i for i, key in enumerate(frames)}
    return (
        BoxSet(
            [keyframes[k] for k in frames],
            np.array([index[e[0]] for e in entries], dtype=np.int64),
            np.array([e[1] for e in entries], dtype=np.float64).reshape(-1, 4),
            evaluated=np.array([e[2] for e in entries], dtype=bool),
            detector_score=np.array([e[3] for e in entries], dtype=np.float64),
        ),
        below,
    )


def build_task(data, log: Callable[[str], None] = print) -> LocalizationTask:
    """The task of a `LocalizeData` config section (see the module docstring)."""
    labelmap = read_labelmap(data.labelmap)
    train_rows, train_counts = read_rows(data.train, data.train_excluded, labelmap, data.unmapped_labels)
    val_rows, val_counts = read_rows(data.val, data.val_excluded, labelmap, data.unmapped_labels)
    train_frames = locate_keyframes(train_rows, data.videos, data.train, data.time_offset, data.decoder)
    val_frames = locate_keyframes(val_rows, data.videos, data.val, data.time_offset, data.decoder)
    proposals = read_proposals(data.val_proposals) if data.val_proposals else None
    train = training_boxes(train_rows, train_frames, list(labelmap))
    val, below = validation_boxes(val_rows, proposals, val_frames, data.detection_threshold)
    evaluated = int(val.evaluated.sum())
    counts = {
        "classes": len(labelmap),
        "train": {**train_counts, "keyframes": len(train.keyframes), "boxes": len(train)},
        "val": {
            **val_counts,
            "keyframes": len(val_frames),
            "groundtruth_boxes": int((~np.isfinite(val.detector_score)).sum()),
            "proposals_read": len(proposals) if proposals is not None else None,
            "proposals_below_threshold": below if proposals is not None else None,
            "boxes_evaluated": evaluated,
        },
    }
    for split, c in (("train", counts["train"]), ("val", counts["val"])):
        if c["unmapped_rows"]:
            log(f"  {split}: {c['unmapped_rows']} rows of classes outside the label map skipped")
        if c["excluded_rows"]:
            log(f"  {split}: {c['excluded_rows']} rows at excluded timestamps dropped")
    if not len(train):
        raise_empty(data.train, "boxes to train on")
    if not evaluated:
        raise_empty(data.val_proposals or data.val, "boxes to evaluate at the validation keyframes")
    return LocalizationTask(labelmap, train, val, val_rows, counts)


def raise_empty(path, what: str):
    raise UserError(f"{path}: no {what} (after excluded timestamps, the label map and the score threshold)")
