"""The AVA annotation layout: label maps, box CSV files and excluded timestamps, read with one-line errors.

Files (https://research.google.com/ava/download.html; no header row, boxes normalised to [0, 1] of the frame,
(0, 0) the top-left corner):

  annotations   `video_id,timestamp,x1,y1,x2,y2,action_id,person_id`: one row per (person box, action);
                a person doing three actions has three rows with the same box. A row of only
                `video_id,timestamp` marks an annotated keyframe with no box (the official evaluator counts its
                detections as false positives); rows of 7 columns (no person_id) are accepted too
  detections    `video_id,timestamp,x1,y1,x2,y2,action_id,score`: AVA's submission layout, what
                `videojepa.eval.ava.frame_map` scores
  proposals     person boxes of a detector: `video_id,timestamp,x1,y1,x2,y2,score`, or SlowFast's
                `ava_detection_{train,val}_boxes_and_labels.csv` layout `video_id,timestamp,x1,y1,x2,y2,,score`
                (an action column, empty or not, that is ignored)
  excluded      `video_id,timestamp`: keyframes left out of training and evaluation
  label map     `.pbtxt`: `item { name: "stand" id: 12 }` blocks (`label_id:` is read as `id:`); AVA's
                `ava_action_list_v2.2_for_activitynet_2019.pbtxt` lists the 60 evaluated classes

A keyframe is `(video_id, timestamp)`; `frame_key` spells it as the official evaluator does (the timestamp as
a decimal number with 6 digits), so `0902`, `902` and `902.0` are the same keyframe. Timestamps are seconds
from the start of the video file (see `videojepa.data.keyframes` for how they become frame indices).

Every problem with a row raises `UserError` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from videojepa.errors import UserError

BOX_FIELDS = ("x1", "y1", "x2", "y2")


@dataclass(frozen=True, slots=True)
class BoxRow:
    """One row of a box file. `box` is (x1, y1, x2, y2); `action_id` is None for proposals and for an
    annotated keyframe without boxes (then `box` is None too); `score` is a detection's or proposal's
    score, `person_id` an annotation's person (None where the file has none)."""

    video_id: str
    timestamp: str
    line: int
    box: tuple[float, float, float, float] | None = None
    action_id: int | None = None
    person_id: int | None = None
    score: float | None = None

    @property
    def key(self) -> str:
        return frame_key(self.video_id, self.timestamp)


def frame_key(video_id: str, timestamp: str | float) -> str:
    """The keyframe's identity as the official evaluator writes it: `video_id,902.000000`."""
    return f"{video_id},{float(Decimal(str(timestamp))):.6f}"  # via float, as its "%.6f" % Decimal(...) does


def parse_key(key: str) -> tuple[str, str]:
    """(video_id, timestamp) of a `frame_key`."""
    video_id, _, timestamp = key.rpartition(",")
    return video_id, timestamp


def _fail(path, line: int, message: str):
    raise UserError(f"{path}:{line}: {message}")


def _timestamp(path, line: int, text: str) -> str:
    text = text.strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0:
        _fail(path, line, f"timestamp {text!r} is not a number of seconds >= 0")
    return text


def _number(path, line: int, field: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        _fail(path, line, f"{field} {text.strip()!r} is not a number")
    return value


def _integer(path, line: int, field: str, text: str, minimum: int) -> int:
    text = text.strip()
    if not re.fullmatch(r"-?\d+", text) or int(text) < minimum:
        _fail(path, line, f"{field} {text!r} is not an integer >= {minimum}")
    return int(text)


def _box(path, line: int, cells: list[str], strict: bool) -> tuple[float, float, float, float]:
    """x1, y1, x2, y2 in [0, 1]; `strict`: x1 < x2 and y1 < y2 too (detections may be empty: the official
    evaluator drops such boxes)."""
    box = tuple(_number(path, line, name, text) for name, text in zip(BOX_FIELDS, cells))
    for name, value in zip(BOX_FIELDS, box):
        if not 0.0 <= value <= 1.0:
            _fail(path, line, f"{name} {value:g} is outside [0, 1] (boxes are fractions of the frame size)")
    if strict:
        for lo, hi in ((0, 2), (1, 3)):
            if box[lo] >= box[hi]:
                _fail(
                    path,
                    line,
                    f"{BOX_FIELDS[hi]} {box[hi]:g} must be greater than {BOX_FIELDS[lo]} {box[lo]:g} (an empty box)",
                )
    return box


def _rows(path):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for line, cells in enumerate(csv.reader(f), 1):
                if cells and any(c.strip() for c in cells):
                    yield line, cells
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text CSV file") from None
    except csv.Error as err:
        raise UserError(f"{path}: not a readable CSV file ({err})") from None


def _video_id(path, line: int, text: str) -> str:
    text = text.strip()
    if not text:
        _fail(path, line, "video_id is empty")
    return text


def read_annotations(path) -> list[BoxRow]:
    """Ground-truth rows: 8 columns (with person_id), 7 (without), or 2 (a keyframe with no boxes)."""
    rows = []
    for line, cells in _rows(path):
        if len(cells) not in (2, 7, 8):
            _fail(
                path,
                line,
                f"expected 8 columns (video_id,timestamp,x1,y1,x2,y2,action_id,person_id), 7 or 2; got {len(cells)}",
            )
        video_id, timestamp = _video_id(path, line, cells[0]), _timestamp(path, line, cells[1])
        if len(cells) == 2:
            rows.append(BoxRow(video_id, timestamp, line))
            continue
        box = _box(path, line, cells[2:6], strict=True)
        action = _integer(path, line, "action_id", cells[6], 1)
        person = _integer(path, line, "person_id", cells[7], 0) if len(cells) == 8 else None
        rows.append(BoxRow(video_id, timestamp, line, box, action, person_id=person))
    return rows


def read_detections(path) -> list[BoxRow]:
    """Scored detections in AVA's submission layout (8 columns, the last a score)."""
    rows = []
    for line, cells in _rows(path):
        if len(cells) != 8:
            _fail(
                path,
                line,
                f"expected 8 columns (video_id,timestamp,x1,y1,x2,y2,action_id,score), got {len(cells)}",
            )
        video_id, timestamp = _video_id(path, line, cells[0]), _timestamp(path, line, cells[1])
        box = _box(path, line, cells[2:6], strict=False)
        action = _integer(path, line, "action_id", cells[6], 1)
        score = _number(path, line, "score", cells[7])
        rows.append(BoxRow(video_id, timestamp, line, box, action, score=score))
    return rows


def read_proposals(path) -> list[BoxRow]:
    """Person boxes with a detector score: 7 columns (score last) or SlowFast's 8 (an ignored action column)."""
    rows = []
    for line, cells in _rows(path):
        if len(cells) not in (7, 8):
            _fail(
                path,
                line,
                f"expected 7 columns (video_id,timestamp,x1,y1,x2,y2,score) or SlowFast's 8 "
                f"(video_id,timestamp,x1,y1,x2,y2,action,score); got {len(cells)}",
            )
        video_id, timestamp = _video_id(path, line, cells[0]), _timestamp(path, line, cells[1])
        box = _box(path, line, cells[2:6], strict=True)
        score = _number(path, line, "score", cells[-1])
        rows.append(BoxRow(video_id, timestamp, line, box, score=score))
    return rows


def read_excluded(path) -> set[str]:
    """The keyframes (`frame_key`s) of an excluded-timestamps file (`video_id,timestamp` rows)."""
    keys = set()
    for line, cells in _rows(path):
        if len(cells) != 2:
            _fail(path, line, f"expected 2 columns (video_id,timestamp), got {len(cells)}")
        keys.add(frame_key(_video_id(path, line, cells[0]), _timestamp(path, line, cells[1])))
    return keys


def read_labelmap(path) -> dict[int, str]:
    """Class id -> name of a `.pbtxt` label map (`item { name: "..." id: N }`; `label_id:` counts as `id:`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"label map not found: {path}")
    text = path.read_text(encoding="utf-8")
    classes: dict[int, str] = {}
    for number, block in enumerate(re.findall(r"item\s*\{(.*?)\}", text, flags=re.S), 1):
        name = re.search(r"\bname\s*:\s*[\"'](.*?)[\"']", block)
        ident = re.search(r"\b(?:label_)?id\s*:\s*(-?\d+)", block)
        if name is None or ident is None:
            raise UserError(f"{path}: item {number} needs a name and an id, got {{{' '.join(block.split())}}}")
        class_id = int(ident.group(1))
        if class_id < 1:
            raise UserError(f"{path}: item {number} ({name.group(1)!r}) has id {class_id}; AVA ids start at 1")
        if class_id in classes:
            raise UserError(f"{path}: id {class_id} is listed twice ({classes[class_id]!r}, {name.group(1)!r})")
        classes[class_id] = name.group(1)
    if not classes:
        raise UserError(f'{path}: no label map items (`item {{ name: "..." id: N }}`)')
    return dict(sorted(classes.items()))


def check_labels(rows: list[BoxRow], labelmap: dict[int, str], path, policy: str) -> tuple[list[BoxRow], int]:
    """Rows whose action id is in the label map. An id outside it fails on its row (`policy` "error"), or its
    rows are dropped and counted (`policy` "skip": AVA's CSVs annotate 80 classes and its evaluation label map
    keeps 60). Rows without an action (empty keyframes) are kept. Returns (kept rows, dropped count)."""
    kept, dropped = [], 0
    for row in rows:
        if row.action_id is None or row.action_id in labelmap:
            kept.append(row)
        elif policy == "skip":
            dropped += 1
        else:
            ids = list(labelmap)
            shown = ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")
            _fail(path, row.line, f"action_id {row.action_id} is not in the label map (ids: {shown})")
    return kept, dropped
