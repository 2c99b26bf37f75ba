"""A synthetic action-localisation task in AVA's layout: several moving objects per clip, each with its own
motion class and a box in every frame, so that the whole localisation protocol runs on a CPU.

Objects are drawn as the motion task's one (`videojepa.data.synth`: same backgrounds, shapes, textures,
marker, trajectories and pixel noise), smaller, 2 to `max_objects` per scene, placed so that their paths
overlap little (they may still cross). Each object's class is one of the motion classes (balanced over all
objects of the dataset), so telling the boxes of one frame apart needs the motion inside each box, not
the scene's. A box is the object's own extent (its shape, occluded or not), in fractions of the frame.

Layout written by `write_localization(out, ...)` under `out/localization/`:
  videos/000000.mp4 ...   H.264, `frames` frames of size x size at `spec.fps`
  labelmap.pbtxt          the motion classes, ids 1, 2, ... in `motions` order
  train.csv, val.csv      AVA annotations `video_id,timestamp,x1,y1,x2,y2,action_id,person_id`: one keyframe
                          per video, its middle frame (index frames // 2); timestamp = frame index / fps, in
                          seconds (0.5 for 16 frames at 16 fps), so `data.time_offset` 0 finds the frame
  val_proposals.csv       a simulated person detector on the val keyframes, in SlowFast's proposals layout
                          `video_id,timestamp,x1,y1,x2,y2,,score`: every true box jittered (each side moved by
                          a normal draw of 8% of the box's size), scored in [0.8, 1) (one in ten in [0.3, 0.8):
                          missed at the usual 0.8 threshold), plus about one false box per two keyframes
                          scored in [0.3, 1)
  tracks.csv              headed: video_id,frame,object,x1,y1,x2,y2,action_id: every object's box in every frame
  localization.json       parameters, class names and counts (written last)
The output is a pure function of the arguments (seed included), whatever the number of worker processes. The
motion and appearance tasks of `write_dataset` are not touched: a separate seed stream draws these scenes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import time
from collections.abc import Sequence

import numpy as np

from videojepa.data.synth import (
    APPEARANCES,
    DEFAULT_MOTIONS,
    MOTIONS,
    SynthSpec,
    _background,
    _contrasting_colour,
    _luminance,
    _shape_sdf,
    _texture,
    _trajectory,
    empty_videos_dir,
    write_mp4,
)
from videojepa.errors import UserError
from videojepa.utils.files import atomic_write_text

# Smaller objects than the one-object task (0.25-0.35 of the frame), so that two or three fit side by side.
OBJECT_SIZE = (0.11, 0.16)  # radius, fraction of the frame size
PATH_LENGTH = (0.15, 0.3)  # distance travelled in the clip, fraction of the frame size
SEED_STREAM = 7_919  # scenes are drawn from [seed, SEED_STREAM, index]: never the motion task's [seed, index]


@dataclasses.dataclass(frozen=True)
class SceneObject:
    motion: str
    label: int  # position in the motion list (action_id = label + 1)
    appearance: str


def plan_objects(num_videos: int, max_objects: int, seed: int, motions: Sequence[str]) -> list[list[SceneObject]]:
    """Every scene's objects: 2..max_objects per scene, motion classes balanced over all objects."""
    rng = np.random.default_rng([seed, SEED_STREAM, 2**31])
    counts = rng.integers(2, max_objects + 1, num_videos)
    labels = rng.permutation(np.arange(int(counts.sum())) % len(motions))
    appearances = rng.choice(len(APPEARANCES), int(counts.sum()))
    names = list(APPEARANCES)
    scenes, i = [], 0
    for count in counts:
        scenes.append(
            [SceneObject(motions[labels[j]], int(labels[j]), names[appearances[j]]) for j in range(i, i + count)]
        )
        i += count
    return scenes


def _swept_box(pos: np.ndarray, radius: float) -> np.ndarray:
    """x1, y1, x2, y2 (pixels) covering an object of `radius` at every position of its path."""
    return np.concatenate([pos.min(0) - radius, pos.max(0) + radius])


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller


def render_objects(spec: SynthSpec, seed: int, index: int, objects: Sequence[SceneObject]):
    """Frames (uint8 F x S x S x 3) of scene `index` and each object's box per frame (float objects x F x 4,
    x1, y1, x2, y2 as fractions of the frame). A pure function of the arguments."""
    rng = np.random.default_rng([seed, SEED_STREAM, index])
    size, frames = spec.size, spec.frames
    f32 = np.float32
    bg = _background(rng, size, spec.clutter)
    bg_lum = _luminance(bg.mean(axis=(0, 1)))
    video = bg.astype(f32)[None].repeat(frames, 0)  # F x S x S x 3, composited object by object
    y, x = (np.mgrid[0:size, 0:size] + 0.5).astype(f32)
    boxes = np.zeros((len(objects), frames, 4))
    placed: list[np.ndarray] = []
    for k, obj in enumerate(objects):
        shape, texture = APPEARANCES[obj.appearance]
        colour_a = _contrasting_colour(rng, bg_lum, 0.3)
        colour_b = _contrasting_colour(rng, _luminance(colour_a), 0.2)
        marker = np.ones(3) if _luminance(colour_a) < 0.5 else np.zeros(3)
        radius = rng.uniform(*OBJECT_SIZE) * size
        s, spin = _trajectory(obj.motion, frames, rng)
        length = rng.uniform(*PATH_LENGTH) * size
        direction = rng.uniform(0, 2 * math.pi)
        d = np.array([math.cos(direction), math.sin(direction)])
        s = (s - (s.max() + s.min()) / 2) * length
        half = np.abs(d) * np.abs(s).max()
        lo, hi = radius + half, size - radius - half
        for _ in range(30):  # a place whose path overlaps the others' little
            centre = np.where(lo < hi, rng.uniform(0, 1, 2) * (hi - lo) + lo, size / 2)
            pos = centre + s[:, None] * d  # F x 2 (x, y)
            swept = _swept_box(pos, radius)
            if all(_overlap(swept, other) < 0.25 for other in placed):
                break
        placed.append(swept)
        angle = rng.uniform(0, 2 * math.pi) + spin * np.linspace(0, 1, frames)
        # Only the pixels the object can cover: every shape lies within one radius of its centre, and a pixel
        # more than half a pixel outside it gets alpha 0, so the frame outside this window is untouched.
        r0, c0 = (max(0, int(v)) for v in np.floor(swept[[1, 0]] - 2))
        r1, c1 = (min(size, int(v)) for v in np.ceil(swept[[3, 2]] + 2))
        wy, wx = y[r0:r1, c0:c1], x[r0:r1, c0:c1]
        dx = (wx[None] - pos[:, 0, None, None].astype(f32)) / f32(radius)
        dy = (wy[None] - pos[:, 1, None, None].astype(f32)) / f32(radius)
        cos, sin = np.cos(angle).astype(f32)[:, None, None], np.sin(angle).astype(f32)[:, None, None]
        qx, qy = cos * dx + sin * dy, -sin * dx + cos * dy
        alpha = np.clip(0.5 - _shape_sdf(shape, qx, qy) * f32(radius), 0, 1)  # F x window
        t = _texture(texture, qx, qy, rng)
        m = np.clip(0.5 - (np.hypot(qx - f32(0.35), qy) - f32(0.17)) * f32(radius), 0, 1)
        window = video[:, r0:r1, c0:c1]
        for c in range(3):
            colour = f32(colour_a[c]) + t * f32(colour_b[c] - colour_a[c])
            colour += m * (f32(marker[c]) - colour)
            window[..., c] += alpha * (colour - window[..., c])
        mask = np.zeros((frames, size, size), dtype=bool)
        mask[:, r0:r1, c0:c1] = alpha > 0.5
        boxes[k] = _mask_boxes(mask, size)
    video += rng.standard_normal(video.shape, dtype=f32) * f32(spec.noise)
    return (np.clip(video, 0, 1) * 255 + 0.5).astype(np.uint8), boxes


def _mask_boxes(mask: np.ndarray, size: int) -> np.ndarray:
    """Per frame, the box (x1, y1, x2, y2, fractions of the frame) around the pixels of `mask` (F x S x S)."""
    out = np.zeros((len(mask), 4))
    for f, m in enumerate(mask):
        cols, rows = np.flatnonzero(m.any(0)), np.flatnonzero(m.any(1))
        if len(cols):
            out[f] = (cols[0] / size, rows[0] / size, (cols[-1] + 1) / size, (rows[-1] + 1) / size)
    return out


def _write_one(job: tuple) -> np.ndarray:
    spec, seed, index, objects, path = job
    frames, boxes = render_objects(spec, seed, index, objects)
    write_mp4(path, frames, spec.fps)
    return boxes


def render_all(jobs: list[tuple], workers: int | None) -> tuple[list[np.ndarray], int]:
    """Write every job's video with `workers` processes (default: all CPUs); the boxes of each, and how many
    processes ran."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        return [_write_one(job) for job in jobs], 1
    with multiprocessing.get_context("spawn" if os.name == "nt" else "fork").Pool(workers) as pool:
        return pool.map(_write_one, jobs, chunksize=max(1, len(jobs) // (workers * 8))), workers


def simulate_proposals(
    rng: np.random.Generator, boxes: np.ndarray, jitter: float = 0.08, miss: float = 0.1, false_rate: float = 0.5
) -> list[tuple[tuple[float, float, float, float], float]]:
    """A detector's (box, score) pairs for one keyframe's true boxes (K x 4): see the module docstring."""
    out = []
    for box in boxes:
        w, h = box[2] - box[0], box[3] - box[1]
        moved = np.clip(box + rng.normal(0, jitter, 4) * np.array([w, h, w, h]), 0, 1)
        if moved[2] - moved[0] < 0.01 or moved[3] - moved[1] < 0.01:
            moved = box
        score = rng.uniform(0.3, 0.8) if rng.random() < miss else rng.uniform(0.8, 1.0)
        out.append((tuple(moved), score))
    for _ in range(rng.poisson(false_rate)):
        side = rng.uniform(*OBJECT_SIZE, 2) * 2
        corner = rng.uniform(0, 1 - side)
        out.append(((corner[0], corner[1], corner[0] + side[0], corner[1] + side[1]), rng.uniform(0.3, 1.0)))
    return out


def write_localization(
    out: str,
    num_videos: int = 120,
    frames: int = 16,
    size: int = 64,
    seed: int = 0,
    workers: int | None = None,
    val_fraction: float = 0.25,
    motions: Sequence[str] = DEFAULT_MOTIONS,
    max_objects: int = 3,
    spec: SynthSpec | None = None,
    force: bool = False,
) -> dict:
    """Render the localisation task into `out/localization` (layout in the module docstring); returns the
    localization.json summary plus the seconds taken and the workers used."""
    unknown = [m for m in motions if m not in MOTIONS]
    if unknown or len(set(motions)) < 2:
        raise UserError(f"localisation needs at least two motion classes from: {', '.join(MOTIONS)}")
    if num_videos < 2 or frames < 2 or size < 16 or not 0 < val_fraction < 1 or max_objects < 2:
        raise UserError(
            "localisation needs >= 2 videos, >= 2 frames, a size >= 16, >= 2 objects and a val fraction in (0, 1)"
        )
    root = os.path.join(out, "localization")
    videos_dir = empty_videos_dir(root, force)
    spec = dataclasses.replace(spec or SynthSpec(), frames=frames, size=size)
    scenes = plan_objects(num_videos, max_objects, seed, motions)
    rng = np.random.default_rng([seed, SEED_STREAM, 2**31 + 1])
    is_val = np.zeros(num_videos, dtype=bool)
    is_val[rng.permutation(num_videos)[: max(1, int(round(num_videos * val_fraction)))]] = True
    names = [f"{i:06d}" for i in range(num_videos)]
    jobs = [(spec, seed, i, objs, os.path.join(videos_dir, f"{names[i]}.mp4")) for i, objs in enumerate(scenes)]

    start = time.perf_counter()
    all_boxes, workers = render_all(jobs, workers)
    seconds = time.perf_counter() - start

    key = frames // 2
    timestamp = f"{key / spec.fps:g}"
    rows = {"train": [], "val": []}
    proposals, tracks = [], ["video_id,frame,object,x1,y1,x2,y2,action_id\n"]
    for i, (objs, boxes) in enumerate(zip(scenes, all_boxes)):
        split = "val" if is_val[i] else "train"
        for k, obj in enumerate(objs):
            box = ",".join(f"{v:.4f}" for v in boxes[k, key])
            rows[split].append(f"{names[i]},{timestamp},{box},{obj.label + 1},{k}\n")
            tracks += [
                f"{names[i]},{f},{k},{','.join(f'{v:.4f}' for v in boxes[k, f])},{obj.label + 1}\n"
                for f in range(frames)
            ]
        if is_val[i]:
            detector = np.random.default_rng([seed, SEED_STREAM, 2**31 + 2, i])
            for box, score in simulate_proposals(detector, boxes[:, key]):
                proposals.append(f"{names[i]},{timestamp},{','.join(f'{v:.4f}' for v in box)},,{score:.4f}\n")
    for split, lines in rows.items():
        atomic_write_text(os.path.join(root, f"{split}.csv"), "".join(lines))
    atomic_write_text(os.path.join(root, "val_proposals.csv"), "".join(proposals))
    atomic_write_text(os.path.join(root, "tracks.csv"), "".join(tracks))
    atomic_write_text(
        os.path.join(root, "labelmap.pbtxt"),
        "".join(f'item {{\n  name: "{m}"\n  id: {i + 1}\n}}\n' for i, m in enumerate(motions)),
    )
    summary = {
        "num_videos": num_videos,
        "num_train": int((~is_val).sum()),
        "num_val": int(is_val.sum()),
        "boxes": {split: len(lines) for split, lines in rows.items()},
        "val_proposals": len(proposals),
        "keyframe": {"frame": key, "timestamp": float(timestamp)},
        "seed": seed,
        "max_objects": max_objects,
        "classes": {str(i + 1): m for i, m in enumerate(motions)},
        "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()},
        "object_size": list(OBJECT_SIZE),
        "path_length": list(PATH_LENGTH),
    }
    atomic_write_text(os.path.join(root, "localization.json"), json.dumps(summary, indent=2))
    return {**summary, "seconds": seconds, "workers": workers}
