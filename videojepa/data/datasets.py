"""Labelled video (and image) datasets: file lists, clip loading, bad-input handling.

Sources (`read_entries`):
  - official V-JEPA list: `path label` per line, space separated, no header (the last field is the label);
  - headed CSV: `path,label[,start_frame,end_frame]` (frames [start_frame, end_frame), end exclusive, empty
    or -1 = to the end); a comma CSV without header is read in the same column order;
  - a folder with one sub-folder per class (UCF101 / ImageNet style; labels are the sorted class names),
    or a flat folder of files (label -1); or a single video or image file (label -1).
Relative paths in a list are relative to the list's folder. Labels that are not integers are class names,
numbered in sorted order; integer labels take their names from a `classes.txt` beside the list, if any.
Image files (by extension) are still clips: one frame repeated frames_per_clip times.

Items: `dataset[i]` is a dict
  - "video": float32 C×T×H×W (normalised) for one clip and one view; with num_clips K and num_views V
    and K·V > 1, a tensor K·V×C×T×H×W ordered clip-major: element k·V + v is view v of clip k;
  - "label": int;
  - "index": the dataset index of the file actually used (differs from i after a bad-file replacement;
    -1 for a bad file of a dataset that excludes bad files, whose "video" is then zeros of the usual shape);
  - with `uint8=True` (what the trainer uses): "video" is uint8 and not yet flipped nor normalised, and
    "flip" (bool, one per clip·view) says which to flip; `transforms.normalize_clips` on the training device
    turns a batch of them into exactly the float items above.
A key may also be a tuple (index, seed, epoch), as yielded by `loader.ResumableSampler`: the item's
randomness (clip starts, crops, flips, replacements) is then a pure function of the key, which makes
data order and augmentation exactly reproducible across workers and resumes. A plain int key draws its
randomness from torch's global generator (seeded per worker by the DataLoader).

Bad input: a file that is missing, empty, not a video, in an unsupported codec, truncated, or too short
under the "skip" policy is skipped with a `BadInputWarning` naming the file and the reason and counted once
(the count is shared by all worker processes). What takes its place depends on `on_bad`: "replace"
(training sets: a random other file, so that batches stay full) or "exclude" (validation sets: nothing;
the item comes back with index -1 and the caller drops it, so that a score never counts a file twice).
When more than `max_bad_fraction` of the dataset's files are bad, loading stops with `TooManyBadFilesError`.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from videojepa.data.config import DataConfig
from videojepa.data.manifest import Manifest
from videojepa.data.readers import _BACKENDS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, BadFileError, open_video, read_image
from videojepa.data.sampling import ShortVideoError, clip_step, sample_clips
from videojepa.data.transforms import ClipTransform, normalize_clips
from videojepa.errors import UserError

MAX_REPLACEMENT_TRIES = 100


class BadInputWarning(UserWarning):
    """A file was skipped; the message names it and says why."""


class TooManyBadFilesError(UserError):
    """More than data.max_bad_fraction of the dataset is unreadable."""


@dataclass
class Entry:
    """One file of a dataset."""

    path: str
    label: int = -1
    start_frame: int = 0
    end_frame: int | None = None

    @property
    def is_image(self) -> bool:
        return self.path.lower().endswith(IMAGE_EXTENSIONS)


# ----------------------------------------------------------------------------- file lists


def _is_media(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)


def _media_files(folder: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if _is_media(f) and not f.startswith(".")]
    return found


def _scan_folder(root: str) -> tuple[list[Entry], list[str]]:
    names = sorted(os.listdir(root))
    loose = [os.path.join(root, n) for n in names if _is_media(n) and os.path.isfile(os.path.join(root, n))]
    classes = [n for n in names if os.path.isdir(os.path.join(root, n)) and not n.startswith(".")]
    per_class = {c: _media_files(os.path.join(root, c)) for c in classes}
    classes = [c for c in classes if per_class[c]]
    if classes and loose:
        raise UserError(
            f"{root} mixes class sub-folders with loose media files (e.g. {loose[0]}); "
            "use one sub-folder per class, or a flat folder"
        )
    if classes:
        entries = [Entry(p, label) for label, c in enumerate(classes) for p in per_class[c]]
        return entries, classes
    return [Entry(p) for p in loose], []


def _parse_int(value: str, where: str, default: int | None) -> int | None:
    value = value.strip()
    if value in ("", "-1"):
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{where}: expected an integer frame number, got {value!r}") from None


def _read_list(path: str) -> tuple[list[Entry], list[str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = [(n, line.strip()) for n, line in enumerate(f, 1)]
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file list (CSV or `path label` lines)") from None
    lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
    if not lines:
        raise UserError(f"{path} lists no files")
    rows = []  # (line number, path, label string, start, end)
    if "," in lines[0][1]:
        table = list(csv.reader([line for _, line in lines]))
        header = [c.strip().lower() for c in table[0]]
        if header[0] == "path":
            if set(header) - {"path", "label", "start_frame", "end_frame"}:
                raise UserError(f"{path}: header columns must be path,label[,start_frame,end_frame]; got {table[0]}")
            table, numbers = table[1:], [n for n, _ in lines[1:]]
        else:
            header, numbers = ["path", "label", "start_frame", "end_frame"][: len(table[0])], [n for n, _ in lines]
        for n, cells in zip(numbers, table):
            if len(cells) != len(header):
                raise UserError(f"{path}:{n}: expected {len(header)} columns ({','.join(header)}), got {len(cells)}")
            row = dict(zip(header, cells))
            where = f"{path}:{n}"
            start = _parse_int(row.get("start_frame", ""), where, 0)
            rows.append(
                (
                    n,
                    row["path"].strip(),
                    row.get("label", "").strip(),
                    start,
                    _parse_int(row.get("end_frame", ""), where, None),
                )
            )
    else:
        for n, line in lines:
            parts = line.rsplit(None, 1)
            if len(parts) == 2:
                rows.append((n, parts[0], parts[1], 0, None))
            else:
                rows.append((n, line, "", 0, None))
    labels = [row[2] for row in rows]
    is_int = [label.lstrip("-").isdigit() for label in labels]
    classes: list[str] = []
    if all(ok or label == "" for ok, label in zip(is_int, labels)):
        numeric = [int(label) if label else -1 for label in labels]
    elif not any(is_int):  # class names
        classes = sorted({label for label in labels if label})
        numeric = [classes.index(label) if label else -1 for label in labels]
    else:
        n, label = next((row[0], row[2]) for row, ok in zip(rows, is_int) if not ok and row[2])
        raise UserError(f"{path}:{n}: label {label!r} is not an integer, unlike other labels in the list")
    folder = os.path.dirname(os.path.abspath(path))
    names_file = os.path.join(folder, "classes.txt")
    if not classes and os.path.isfile(names_file):  # class names beside the list, one per line in label order
        with open(names_file, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) <= max(numeric):
            raise UserError(
                f"{names_file} names {len(names)} classes but {path} uses label {max(numeric)}: it needs "
                f"at least {max(numeric) + 1} names, one per line in label order (or remove it to number "
                f"the classes)"
            )
        classes = names
    entries = []
    for (n, p, _, start, end), label in zip(rows, numeric):
        if end is not None and end <= start:
            raise UserError(f"{path}:{n}: end_frame {end} must be greater than start_frame {start}")
        entries.append(Entry(os.path.normpath(os.path.join(folder, os.path.expanduser(p))), label, start, end))
    return entries, classes


def read_entries(path: str) -> tuple[list[Entry], list[str]]:
    """The files listed by a CSV/list file or found in a folder (or one media file), and the class names."""
    path = os.path.expanduser(str(path))
    if not os.path.exists(path):
        raise UserError(f"data source not found: {path}")
    if os.path.isdir(path):
        entries, classes = _scan_folder(path)
    elif _is_media(path):  # a single video or image
        entries, classes = [Entry(path)], []
    else:
        entries, classes = _read_list(path)
    if not entries:
        raise UserError(
            f"no video or image files in {path} (looked for {', '.join(VIDEO_EXTENSIONS + IMAGE_EXTENSIONS)})"
        )
    return entries, classes


# ----------------------------------------------------------------------------- dataset


class VideoDataset(torch.utils.data.Dataset):
    """Clips from a list of video/image files; see the module docstring for items and bad-input rules."""

    def __init__(
        self,
        entries: list[Entry],
        cfg: DataConfig,
        train: bool,
        classes: list[str] | None = None,
        source: str = "",
        on_bad: Literal["replace", "exclude"] = "replace",
        manifest: Manifest | None = None,
        uint8: bool = False,
    ):
        if cfg.decoder not in _BACKENDS:
            raise UserError(f"data.decoder: unknown backend {cfg.decoder!r}; available: {sorted(_BACKENDS)}")
        if on_bad not in ("replace", "exclude"):
            raise ValueError(f"on_bad must be 'replace' or 'exclude', got {on_bad!r}")
        self.entries, self.cfg, self.train, self.on_bad = entries, cfg, train, on_bad
        self.classes = classes or []
        self.source = source
        self.manifest = manifest  # a prepared copy's frame tables: files open without a scan
        self.uint8 = uint8  # items hold uint8 clips + flips, normalised on the training device
        self.transform = ClipTransform.from_config(cfg, train)
        # Shared by worker processes: one flag per file, and the number of flags set.
        self._bad_flags = multiprocessing.Array("b", len(entries))
        self._num_bad = multiprocessing.Value("i", 0)
        self.bad_reasons: dict[str, str] = {}  # files found bad by THIS process

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def num_bad(self) -> int:
        """Distinct files found bad so far, by any worker."""
        return self._num_bad.value

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else max((e.label for e in self.entries), default=-1) + 1

    def __getitem__(self, key) -> dict:
        if isinstance(key, (tuple, list)):
            index, *seed = (int(k) for k in key)
        else:
            index, seed = int(key), [int(torch.randint(0, 2**62, ()).item())]
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} files")
        for attempt in range(MAX_REPLACEMENT_TRIES):
            if not self._bad_flags[index]:
                try:
                    rng = np.random.default_rng([*seed, index, attempt])
                    if not self.uint8:
                        return {"video": self.load(index, rng), "label": self.entries[index].label, "index": index}
                    views, flips = self.load_views(index, rng)
                    if views.shape[0] == 1:
                        views, flips = views[0], flips[0]
                    return {"video": views, "flip": flips, "label": self.entries[index].label, "index": index}
                except BadFileError as err:
                    self._mark_bad(index, err.reason)
            if self.on_bad == "exclude":
                return self.excluded_item(index)
            index = int(np.random.default_rng([*seed, index, attempt, 1]).integers(len(self)))
        raise TooManyBadFilesError(
            f"no readable file found in {MAX_REPLACEMENT_TRIES} random tries "
            f"({self.num_bad} of {len(self)} files bad in {self.source or 'the dataset'})"
        )

    def excluded_item(self, index: int) -> dict:
        """The stand-in for a bad file of an "exclude" dataset: index -1 (to be dropped), zeros as video so
        that the batch still collates."""
        cfg = self.cfg
        views = cfg.num_clips * cfg.num_views
        shape = (3, cfg.frames_per_clip, cfg.crop_size, cfg.crop_size)
        return {
            "video": torch.zeros((views, *shape) if views > 1 else shape),
            "label": self.entries[index].label,
            "index": -1,
        }

    def load(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        """Decode, sample and augment file `index` (raises `BadFileError`); see the module docstring for the shape."""
        views, flips = self.load_views(index, rng)
        video = normalize_clips(views, flips, self.transform.norm_shift, self.transform.norm_scale)
        return video[0] if video.shape[0] == 1 else video

    def load_views(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 clips K·V×C×T×H×W of file `index` before flip and normalisation, and their flips (bool K·V)."""
        return self.augment(self.read_clips(index, rng), rng)

    def read_clips(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        """Decoding: the sampled frames of file `index`, uint8 K×T×H×W×3 (an image: 1×1×H×W×3)."""
        entry, cfg = self.entries[index], self.cfg
        if entry.is_image:
            return read_image(entry.path)[None, None]
        index_table = self.manifest.index_for(entry.path) if self.manifest and cfg.decoder == "pyav" else None
        with open_video(
            entry.path,
            backend=cfg.decoder,
            threads=cfg.decode_threads,
            **({"index": index_table} if index_table is not None else {}),
        ) as reader:
            n = reader.num_frames
            if entry.start_frame >= n:
                raise BadFileError(entry.path, f"start_frame {entry.start_frame} is past the end ({n} frames)")
            try:
                step = clip_step(reader.fps, cfg.frame_step, cfg.fps)
                indices = sample_clips(
                    n,
                    cfg.frames_per_clip,
                    step,
                    cfg.num_clips,
                    rng if self.train else None,
                    cfg.short_video,
                    entry.start_frame,
                    entry.end_frame,
                    grid=cfg.fps is not None,
                )
            except (ShortVideoError, ValueError) as err:
                raise BadFileError(entry.path, str(err)) from None
            frames = reader.read(indices.reshape(-1))
        return frames.view(cfg.num_clips, cfg.frames_per_clip, *frames.shape[1:])

    def augment(self, frames: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmentation of `read_clips`' frames: uint8 views K·V×C×T×S×S and their flips."""
        cfg = self.cfg
        clips = [self.transform.views(f, rng if self.train else None) for f in frames]
        views, flips = torch.cat([v for v, _ in clips]), torch.cat([f for _, f in clips])
        if frames.shape[:2] != (cfg.num_clips, cfg.frames_per_clip):  # an image: one still clip for every segment
            views = views.expand(-1, -1, cfg.frames_per_clip, -1, -1).repeat(cfg.num_clips, 1, 1, 1, 1)
            flips = flips.repeat(cfg.num_clips)
        return views, flips

    def _mark_bad(self, index: int, reason: str) -> None:
        path = self.entries[index].path
        self.bad_reasons[path] = reason
        with self._num_bad.get_lock():
            first = not self._bad_flags[index]
            if first:
                self._bad_flags[index] = 1
                self._num_bad.value += 1
            count = self._num_bad.value
        if first:
            warnings.warn(
                f"skipping {path}: {reason} ({count} bad of {len(self)} files so far)", BadInputWarning, stacklevel=3
            )
        if count > self.cfg.max_bad_fraction * len(self):
            raise TooManyBadFilesError(
                f"{count} of {len(self)} files ({count / len(self):.1%}) are unreadable, more than "
                f"data.max_bad_fraction={self.cfg.max_bad_fraction:g}; last: {path}: {reason}. "
                f"List them all with: videojepa data check {self.source or '<your data>'}"
            )
