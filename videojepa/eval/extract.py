"""Feature extraction to files: what `videojepa extract --checkpoint C --input X --out F` runs.

    summary = extract_features(load_encoder("runs/vjepa"), "videos/", "feats.npy", pooling="mean")

Input: a video or image file, a folder (class sub-folders or flat, searched recursively), or a CSV /
list file in the formats `videojepa.data` reads (start_frame / end_frame columns restrict the range).

Windows: a window is `frames` frames taken every `frame_step` frames (or resampled to `fps`); windows
start every `stride` frames (default: the window's span, i.e. back to back) from the first frame, and
when frames at the end are left uncovered one more window ends at the last frame, so the whole video
is covered. A video shorter than one window gives one window with its last frame repeated; an image is
one window of the repeated frame. Frames are resized (short side to `size`) and centre-cropped to
size x size, then normalised with `mean` / `std`.

Output, one row per window (float32):
  pooling "none" -> (tokens, D), tokens ordered (t, h, w); "mean" -> (D,); "frame" -> (T', D), the
  mean of each time step's tokens (T' = frames / tubelet). Several layers add an axis after the row:
  (rows, layers, ...). `F.npy` holds the array; `F.safetensors` holds it as tensor "features" beside
  per-row "video" (position in the input list), "window", "start_frame" and "end_frame" tensors.
  `F.index.csv` says where every row comes from: row,path,label,window,start_frame,end_frame,frames
  (frames = the window's frame indices, space separated); `F.json` records the settings, the output
  shape and the skipped files.
Resume: every finished video is saved at once in `F.parts/`; running the same command again after an
interruption skips those videos, and the parts are merged and removed at the end. Unreadable files are
skipped with a warning (as in the data pipeline) and listed in F.json.
"""

from __future__ import annotations

import csv
import json
import shutil
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from videojepa.data.datasets import BadInputWarning, Entry, read_entries
from videojepa.data.readers import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, BadFileError, open_video, read_image
from videojepa.data.sampling import clip_offsets, clip_step
from videojepa.data.transforms import ClipTransform
from videojepa.errors import UserError
from videojepa.eval.features import POOLINGS, encode, pool
from videojepa.utils.files import atomic_path, atomic_write_text

FORMATS = (".npy", ".safetensors")


def window_starts(num_frames: int, span: int, stride: int) -> list[int]:
    """First frames of the windows covering `num_frames` frames (see the module docstring)."""
    if num_frames <= span:
        return [0]
    starts = list(range(0, num_frames - span + 1, stride))
    if starts[-1] + span < num_frames:
        starts.append(num_frames - span)
    return starts


def video_windows(
    num_frames: int, offsets: np.ndarray, stride: int, start: int = 0, end: int | None = None
) -> np.ndarray:
    """Frame indices (windows, frames) of the windows over frames [start, end) of a video."""
    end = num_frames if end is None else min(end, num_frames)
    if end <= start:
        raise ValueError(f"empty frame range [{start}, {end}) in a video of {num_frames} frames")
    n, span = end - start, int(offsets[-1]) + 1
    return np.stack([start + np.minimum(s + offsets, n - 1) for s in window_starts(n, span, stride)])


class WindowStream(torch.utils.data.IterableDataset):
    """Decoded, transformed windows of the videos in `todo`, in chunks of at most `chunk` windows.

    Yields {"video": i, "windows": (W, C, T, S, S), "frames": (W, T), "first": window number of the
    first, "total": windows in this video} or {"video": i, "error": reason} for a bad file.
    Worker processes split the videos between them.
    """

    def __init__(
        self,
        entries,
        todo: Sequence[int],
        transform,
        frames: int,
        frame_step: int,
        fps: float | None,
        stride: int | None,
        chunk: int,
        decoder: str = "pyav",
    ):
        super().__init__()
        self.entries, self.todo, self.transform = entries, list(todo), transform
        self.frames, self.frame_step, self.fps, self.stride = frames, frame_step, fps, stride
        self.chunk, self.decoder = chunk, decoder

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        mine = self.todo[info.id :: info.num_workers] if info else self.todo
        for i in mine:
            try:
                yield from self.windows(i)
            except BadFileError as err:
                yield {"video": i, "error": err.reason}

    def windows(self, i: int):
        entry = self.entries[i]
        if entry.is_image:
            clip = self.transform(read_image(entry.path)[None])[0].expand(-1, self.frames, -1, -1)
            yield {
                "video": i,
                "windows": clip[None].contiguous(),
                "frames": np.zeros((1, self.frames), np.int64),
                "first": 0,
                "total": 1,
            }
            return
        with open_video(entry.path, backend=self.decoder) as reader:
            try:
                step = clip_step(reader.fps, self.frame_step, self.fps)
                offsets = clip_offsets(self.frames, step)
                stride = self.stride or int(offsets[-1]) + 1
                indices = video_windows(reader.num_frames, offsets, stride, entry.start_frame, entry.end_frame)
            except ValueError as err:
                raise BadFileError(entry.path, str(err)) from None
            for first in range(0, len(indices), self.chunk):
                part = indices[first : first + self.chunk]
                frames = reader.read(part.reshape(-1))
                frames = frames.view(len(part), self.frames, *frames.shape[1:])
                clips = torch.stack([self.transform(f)[0] for f in frames])
                yield {"video": i, "windows": clips, "frames": part, "first": first, "total": len(indices)}


def _settings(encoder_id: dict, source: str, entries, **kw) -> dict:
    return {"encoder": encoder_id, "input": source, "files": [e.path for e in entries], **kw}


def extract_features(
    encoder: torch.nn.Module,
    source: str,
    out: str,
    frames: int = 16,
    frame_step: int = 4,
    fps: float | None = None,
    stride: int | None = None,
    size: int = 224,
    layers: Sequence[int] = (-1,),
    pooling: str = "mean",
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
    batch_size: int = 8,
    precision: str = "fp32",
    workers: int = 0,
    progress: bool = True,
    force: bool = False,
    encoder_id: dict | None = None,
) -> dict:
    """Write features of every window of every file in `source` to `out`; returns the summary (F.json)."""
    out = Path(out)
    layers = check_request(encoder, out, frames, size, stride, layers, pooling)
    entries = input_entries(source)
    settings = _settings(
        encoder_id or {"arch": encoder.arch},
        str(source),
        entries,
        frames=frames,
        frame_step=frame_step,
        fps=fps,
        stride=stride,
        size=size,
        layers=layers,
        pooling=pooling,
        mean=list(mean),
        std=list(std),
        precision=precision,
        format=out.suffix,
    )
    meta_path, index_path, parts = out.with_suffix(".json"), out.with_suffix(".index.csv"), out.with_suffix(".parts")
    if out.exists() and not parts.exists() and not force:
        done = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if done.get("settings") == settings:
            return done
        raise UserError(f"{out} already exists (made with other settings); choose another --out or pass --force")
    start_parts(parts, settings, force)

    todo = [i for i in range(len(entries)) if not (parts / f"{i:08d}.npz").is_file()]
    transform = ClipTransform(size, tuple(mean), tuple(std), train=False, eval_resize_ratio=1.0)
    stream = WindowStream(entries, todo, transform, frames, frame_step, fps, stride, batch_size)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers)
    bar = tqdm(
        total=len(entries),
        initial=len(entries) - len(todo),
        unit="video",
        disable=not progress,
        desc=f"extract {out.name}",
    )
    encode_windows = lambda clips: window_features(encoder, clips, layers, pooling, precision)  # noqa: E731
    writer = PartWriter(encode_windows, parts, batch_size, on_video_done=lambda: bar.update(1))
    skipped: dict[str, str] = {}
    for item in loader:
        if "error" in item:
            path = entries[item["video"]].path
            skipped[path] = item["error"]
            warnings.warn(
                f"skipping {path}: {item['error']} ({len(skipped)} bad of {len(entries)} files so far)",
                BadInputWarning,
                stacklevel=2,
            )
            writer.drop(item["video"])
            bar.update(1)
        else:
            writer.add(item)
    writer.flush()
    bar.close()
    return _assemble(out, entries, parts, settings, skipped, meta_path, index_path)


def check_request(
    encoder, out: Path, frames: int, size: int, stride: int | None, layers: Sequence[int], pooling: str
) -> list[int]:
    """A UserError for settings the encoder or the output cannot take; returns the layers as ints."""
    if out.suffix not in FORMATS:
        raise UserError(f"--out {out}: the file name must end in {' or '.join(FORMATS)}")
    if pooling not in POOLINGS:
        raise UserError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if frames % encoder.tubelet_size or size % encoder.patch_size:
        raise UserError(
            f"--frames {frames} must be a multiple of the tubelet size {encoder.tubelet_size} and --size "
            f"{size} a multiple of the patch size {encoder.patch_size}"
        )
    if stride is not None and stride < 1:
        raise UserError(f"--stride must be at least 1 frame, got {stride}")
    layers = [int(x) for x in layers]
    if any(not -encoder.depth <= x < encoder.depth for x in layers):
        raise UserError(f"--layers {layers}: the encoder has blocks 0..{encoder.depth - 1} (or -1..-{encoder.depth})")
    return layers


def input_entries(source: str) -> list:
    """The files of `source`: one video or image file, or what `videojepa.data.read_entries` lists."""
    path = Path(source)
    if path.is_file() and path.name.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS):
        return [Entry(str(path))]
    return read_entries(str(path))[0]


def start_parts(parts: Path, settings: dict, force: bool) -> None:
    """The folder of finished videos' parts, for these settings: kept to resume the same run, refused when
    an unfinished run with other settings left it (emptied with `force`)."""
    parts.mkdir(parents=True, exist_ok=True)
    settings_file = parts / "settings.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != settings and not force:
        raise UserError(
            f"{parts} holds an unfinished run with other settings; rerun that command to finish it, "
            "pass --force to discard it, or choose another --out"
        )
    if force:
        for stale in parts.glob("*.npz"):
            stale.unlink()
    atomic_write_text(settings_file, json.dumps(settings))


def window_features(encoder, clips: torch.Tensor, layers: list[int], pooling: str, precision: str) -> np.ndarray:
    """Output rows for a batch of windows (B, C, T, S, S), see the module docstring."""
    tokens = encode(encoder, clips, layers=layers, precision=precision)
    if len(layers) > 1:  # (B, N, L*D) -> (B, L, N, D)
        tokens = tokens.view(*tokens.shape[:2], len(layers), encoder.embed_dim).transpose(1, 2)
    return pool(tokens, pooling, clips.shape[2] // encoder.tubelet_size).cpu().numpy()  # the encoder may run on a GPU


class PartWriter:
    """Gathers the windows of `WindowStream` items into batches of `batch_size` for the encoder (across
    videos), and writes a video's part file (its rows and their frame indices) once its last window is done."""

    def __init__(
        self,
        encode_windows: Callable[[torch.Tensor], np.ndarray],
        parts: Path,
        batch_size: int,
        on_video_done: Callable[[], None],
    ):
        self.encode_windows, self.parts, self.batch_size, self.on_video_done = (
            encode_windows,
            parts,
            batch_size,
            on_video_done,
        )
        self.pending: list[tuple[int, int, torch.Tensor]] = []  # (video, window, clip) waiting for the encoder
        self.rows: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
        self.frames: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
        self.totals: dict[int, int] = {}

    def add(self, item: dict) -> None:
        """A chunk of one video's windows; encodes every full batch."""
        v = item["video"]
        self.totals[v] = item["total"]
        for k, (clip, idx) in enumerate(zip(item["windows"], item["frames"])):
            self.frames[v][item["first"] + k] = np.asarray(idx)
            self.pending.append((v, item["first"] + k, clip))
        while len(self.pending) >= self.batch_size:
            self.encode(self.pending[: self.batch_size])
            self.pending = self.pending[self.batch_size :]

    def drop(self, v: int) -> None:
        """Forget a video that turned out unreadable."""
        self.pending = [p for p in self.pending if p[0] != v]
        self.rows.pop(v, None), self.frames.pop(v, None), self.totals.pop(v, None)

    def flush(self) -> None:
        if self.pending:
            self.encode(self.pending)
            self.pending = []

    def encode(self, batch: list[tuple[int, int, torch.Tensor]]) -> None:
        feats = self.encode_windows(torch.stack([clip for _, _, clip in batch]))
        for (v, w, _), f in zip(batch, feats):
            self.rows[v][w] = f
        for v in {v for v, _, _ in batch}:
            if v in self.totals and len(self.rows[v]) == self.totals[v]:
                self.write(v)

    def write(self, v: int) -> None:
        rows = np.stack([self.rows[v][w] for w in range(self.totals[v])])
        idx = np.stack([self.frames[v][w] for w in range(self.totals[v])])
        with atomic_path(self.parts / f"{v:08d}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, features=rows.astype(np.float32), frames=idx)
        del self.rows[v], self.frames[v], self.totals[v]
        self.on_video_done()


def _assemble(
    out: Path, entries, parts: Path, settings: dict, skipped: dict, meta_path: Path, index_path: Path
) -> dict:
    """Merge the per-video parts into the output file, the index and the summary; remove the parts."""
    done = [(i, parts / f"{i:08d}.npz") for i in range(len(entries)) if (parts / f"{i:08d}.npz").is_file()]
    if not done:
        raise UserError(
            f"no features written: all {len(entries)} input files were unreadable "
            f"(e.g. {next(iter(skipped.items()), ('?', '?'))[0]})"
        )
    rows, shape = 0, None
    for _, p in done:
        with np.load(p) as z:
            rows += len(z["features"])
            shape = z["features"].shape[1:]
    index, row_video = [], []
    with atomic_path(out) as tmp:
        if out.suffix == ".npy":
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(rows, *shape))
        else:
            array = np.empty((rows, *shape), np.float32)
        row = 0
        for i, p in done:
            with np.load(p) as z:
                feats, frames = z["features"], z["frames"]
            array[row : row + len(feats)] = feats
            e = entries[i]
            for w, fr in enumerate(frames):
                index.append((row + w, e.path, e.label, w, int(fr.min()), int(fr.max()) + 1, " ".join(map(str, fr))))
            row_video += [i] * len(feats)
            row += len(feats)
        if out.suffix == ".npy":
            array.flush()
            del array
        else:
            from safetensors.torch import save_file

            tensors = {
                name: torch.tensor([r[c] for r in index])
                for name, c in (("window", 3), ("start_frame", 4), ("end_frame", 5))
            }
            tensors["video"] = torch.tensor(row_video)
            save_file(
                {"features": torch.from_numpy(array), **tensors}, str(tmp), metadata={"settings": json.dumps(settings)}
            )
    with atomic_path(index_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "path", "label", "window", "start_frame", "end_frame", "frames"])
        writer.writerows(index)
    summary = {
        "output": str(out),
        "index": str(index_path),
        "shape": [rows, *shape],
        "videos": len(done),
        "skipped": [{"path": p, "reason": r} for p, r in skipped.items()],
        "settings": settings,
    }
    atomic_write_text(meta_path, json.dumps(summary, indent=2) + "\n")
    shutil.rmtree(parts)
    return summary
