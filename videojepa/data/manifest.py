"""The manifest of a prepared dataset: per video, its frame count, frame rate, duration and frame table.

`videojepa data prepare` writes `<list stem>.manifest.json` beside the list it writes (for a folder source,
`manifest.json` inside the folder). The dataset finds it there and hands each video's frame table to the
reader, which then opens the file without scanning its packets. Layout:

    {"format": "videojepa-prepared/1", "settings": {...}, "source": "/abs/SRC",
     "videos": {"<path relative to the manifest's folder>": {
         "frames": 75, "fps": 7.5, "duration": 10.0, "width": 340, "height": 256, "bytes": 123456,
         "time_base": [1, 15360], "pts": {"start": 0, "step": 2048} | [0, 2048, ...], "keyframes": [0, 8, ...],
         "source": "<original path relative to SRC's folder>", "source_frames": 300, "source_fps": 30.0,
         "source_bytes": 654321}},
     "bad": [{"source": "...", "reason": "..."}]}

Timestamps are stored as `start` + `step` when they are evenly spaced (what `prepare` writes), else as a
list. A table is used only while the file still has the size recorded with it; a file rewritten since is
scanned as usual (same frames, only slower).
"""

from __future__ import annotations

import json
import os

import numpy as np

from videojepa.data.readers import FrameIndex
from videojepa.errors import UserError

FORMAT = "videojepa-prepared/1"


def manifest_path(source: str) -> str:
    """Where the manifest of a prepared list or folder lives."""
    if os.path.isdir(source):
        return os.path.join(source, "manifest.json")
    stem = os.path.splitext(source)[0]
    return f"{stem}.manifest.json"


def encode_index(index: FrameIndex) -> dict:
    """The manifest fields of a frame table."""
    pts = index.pts.astype(np.int64)
    steps = np.diff(pts)
    regular = len(pts) > 1 and bool((steps == steps[0]).all())
    return {
        "pts": {"start": int(pts[0]), "step": int(steps[0])} if regular else pts.tolist(),
        "keyframes": np.flatnonzero(index.keyframe).tolist(),
    }


def decode_index(record: dict) -> FrameIndex:
    """The frame table of one manifest record."""
    n = int(record["frames"])
    pts = record["pts"]
    if isinstance(pts, dict):
        pts = pts["start"] + pts["step"] * np.arange(n, dtype=np.int64)
    keyframe = np.zeros(n, dtype=bool)
    keyframe[np.asarray(record["keyframes"], dtype=np.int64)] = True
    keyframe[0] = True
    return FrameIndex(np.asarray(pts, dtype=np.int64), keyframe, float(record["fps"]))


class Manifest:
    """A loaded manifest: `index_for(path)` gives a video's frame table, or None (not listed, or changed)."""

    def __init__(self, path: str, data: dict):
        self.path, self.settings = path, data.get("settings", {})
        folder = os.path.dirname(os.path.abspath(path))
        self.records = {os.path.normpath(os.path.join(folder, rel)): rec for rel, rec in data["videos"].items()}

    @classmethod
    def find(cls, source: str) -> Manifest | None:
        """The manifest of a list or folder, if it has one."""
        path = manifest_path(os.path.expanduser(str(source)))
        if not os.path.isfile(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as err:
            raise UserError(
                f"{path} is not a readable manifest ({err}); delete it or re-run videojepa data prepare"
            ) from None
        if data.get("format") != FORMAT or not isinstance(data.get("videos"), dict):
            raise UserError(f"{path} is not a videojepa manifest (expected format {FORMAT!r})")
        return cls(path, data)

    def index_for(self, path: str) -> FrameIndex | None:
        record = self.records.get(os.path.normpath(path))
        if record is None:
            return None
        try:
            if os.path.getsize(path) != record["bytes"]:
                return None
        except OSError:
            return None  # the reader reports the missing file
        return decode_index(record)
