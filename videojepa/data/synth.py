"""Synthetic labelled videos: a MOTION task that needs temporal modelling and an APPEARANCE task.

Every scene is one textured object moving over a static background. Everything a single frame shows
is random and independent of the motion class: shape, texture, size, colours, orientation, position,
the background (random colour gradient plus smooth clutter) and per-frame pixel noise. The object
carries a small off-centre marker so that its rotation is visible whatever its shape.

Motion classes (`MOTIONS`; the default task `DEFAULT_MOTIONS` uses rotate_cw, rotate_ccw, bounce and
oscillate; label = position in the chosen list). Every object travels along a random
direction, covering a random distance drawn from the same range for every class (so the mean speed
says nothing about the class); what differs is how the motion unfolds in time:
  rotate_cw, rotate_ccw    constant-speed drift while spinning clockwise / counter-clockwise on screen
                           (0.5 to 1 turn per clip); the only spinning classes, the SENSE is the label
  accelerate, decelerate   straight line, speed ramping up from 0 / down to 0 (time mirrors)
  bounce                   constant speed, reverses direction once, in the middle third of the clip
  oscillate                periodic back-and-forth, 1.25 to 2 cycles per clip
A single frame is at chance on this task; the motion-energy profile over time separates the
translation classes but not the rotation sense, which needs spatio-temporal features
(tests/test_data_synth.py measures all three).

Appearance classes (`APPEARANCES`): the object's shape with its texture (solid disk, striped square,
checkered triangle, dotted cross), with the motion class, colours and everything else random.

Layout written by `write_dataset(out, ...)` (paths inside a list are relative to the list's folder):
  out/videos/000000.mp4 ...           H.264, `frames` frames of size×size at 16 fps
  out/motion/train.csv, val.csv       official V-JEPA format: `../videos/000000.mp4 <label>`
  out/motion/classes.txt              class names in label order
  out/appearance/train.csv, val.csv   the same videos labelled by appearance
  out/appearance/classes.txt
  out/scenes.csv                      headed: path,split,motion,appearance
  out/synth.json                      parameters, class lists and counts
Labels are balanced over classes; the output is a pure function of the arguments (seed included),
whatever the number of worker processes.
"""

from __future__ import annotations

import dataclasses
import fractions
import json
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from videojepa.data.readers import pyav
from videojepa.errors import UserError
from videojepa.utils.files import atomic_write_text

MOTIONS = ("rotate_cw", "rotate_ccw", "accelerate", "decelerate", "bounce", "oscillate")
# The default motion task (the demo's). Calibrated on a GPU sweep (EXPERIMENTS.md, "Choosing the motion task"):
# with all six classes and smaller objects every encoder, random or pretrained, probed at chance; these four
# classes on larger objects put a random-init encoder's attentive probe at 48-59% (chance 25%), far from
# saturated, and still need time: a single frame cannot tell them apart.
DEFAULT_MOTIONS = ("rotate_cw", "rotate_ccw", "bounce", "oscillate")
# Appearance class -> (shape, texture).
APPEARANCES = {
    "solid_disk": ("disk", "solid"),
    "striped_square": ("square", "stripes"),
    "checkered_triangle": ("triangle", "checker"),
    "dotted_cross": ("cross", "dots"),
}


@dataclass(frozen=True)
class SynthSpec:
    """Rendering parameters (the class lists are arguments of `write_dataset`)."""

    frames: int = 16
    size: int = 64
    fps: int = 16
    clutter: float = 0.1  # amplitude of the smooth background texture
    noise: float = 0.015  # std of the per-frame pixel noise
    object_size: tuple[float, float] = (0.25, 0.35)  # object radius, as a fraction of the frame size
    path_length: tuple[float, float] = (0.25, 0.45)  # distance travelled, as a fraction of the frame size


# ----------------------------------------------------------------------------- rendering


def _luminance(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]))


def _contrasting_colour(rng: np.random.Generator, against: float, min_diff: float) -> np.ndarray:
    for _ in range(100):
        colour = rng.uniform(0, 1, 3)
        if abs(_luminance(colour) - against) >= min_diff:
            return colour
    return np.zeros(3) if against > 0.5 else np.ones(3)


def _background(rng: np.random.Generator, size: int, clutter: float) -> np.ndarray:
    c1, c2 = rng.uniform(0.05, 0.95, (2, 3))
    angle = rng.uniform(0, 2 * math.pi)
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    g = ((x - 0.5) * math.cos(angle) + (y - 0.5) * math.sin(angle)) / math.sqrt(2) + 0.5
    bg = c1 * (1 - g[..., None]) + c2 * g[..., None]
    # Smooth clutter: coarse random grid, bilinearly upsampled.
    coarse = rng.normal(0, 1, (9, 9, 3))
    pos = np.linspace(0, 8, size)
    i0 = np.minimum(pos.astype(int), 7)
    f = (pos - i0)[:, None]
    rows = coarse[i0] * (1 - f[..., None]) + coarse[i0 + 1] * f[..., None]
    smooth = rows[:, i0] * (1 - f[None, :, :]) + rows[:, i0 + 1] * f[None, :, :]
    return bg + clutter * smooth


def _shape_sdf(shape: str, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
    """Approximate signed distance (in object radii) to a shape of circumradius ~1 centred at 0."""
    if shape == "disk":
        return np.hypot(qx, qy) - 0.9
    if shape == "square":
        return np.maximum(np.abs(qx), np.abs(qy)) - 0.7
    if shape == "triangle":
        normals = [(math.cos(a), math.sin(a)) for a in math.pi / 2 + 2 * math.pi / 3 * np.arange(3)]
        return np.max([qx * nx + qy * ny for nx, ny in normals], axis=0) - 0.5
    if shape == "cross":
        ax, ay = np.abs(qx), np.abs(qy)
        return np.minimum(np.maximum(ax - 0.9, ay - 0.3), np.maximum(ax - 0.3, ay - 0.9))
    raise ValueError(f"unknown shape {shape!r}")


def _texture(texture: str, qx: np.ndarray, qy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    freq, p1, p2 = rng.uniform(2.5, 4.0), rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)
    if texture == "solid":
        return np.zeros_like(qx)
    if texture == "stripes":
        return (np.sin(math.pi * freq * qx + p1) > 0).astype(qx.dtype)
    if texture == "checker":
        return (np.sin(math.pi * freq * qx + p1) * np.sin(math.pi * freq * qy + p2) > 0).astype(qx.dtype)
    if texture == "dots":
        fx, fy = (qx * freq / 2 + p1) % 1 - 0.5, (qy * freq / 2 + p2) % 1 - 0.5
        return (fx**2 + fy**2 < 0.07).astype(qx.dtype)
    raise ValueError(f"unknown texture {texture!r}")


def _trajectory(motion: str, frames: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Position along the motion direction over time (path length 1) and the total spin (radians)."""
    u = np.linspace(0.0, 1.0, frames)
    spin = 0.0
    if motion in ("rotate_cw", "rotate_ccw"):
        s = u
        spin = rng.uniform(0.5, 1.0) * 2 * math.pi * (1 if motion == "rotate_cw" else -1)  # +angle = clockwise (y down)
    elif motion == "accelerate":
        s = u**2
    elif motion == "decelerate":
        s = 1 - (1 - u) ** 2
    elif motion == "bounce":
        turn = rng.uniform(1 / 3, 2 / 3)
        s = np.where(u < turn, u, 2 * turn - u)
    elif motion == "oscillate":
        cycles = rng.uniform(1.25, 2.0)
        s = np.sin(2 * math.pi * cycles * u + rng.uniform(0, 2 * math.pi)) / (4 * cycles)  # path length ~1
    else:
        raise ValueError(f"unknown motion {motion!r}; choose from {MOTIONS}")
    return s, spin


def render_scene(spec: SynthSpec, seed: int, index: int, motion: str, appearance: str) -> np.ndarray:
    """Frames (uint8 F×S×S×3) of scene `index`. A pure function of the arguments."""
    rng = np.random.default_rng([seed, index])
    size, frames = spec.size, spec.frames
    shape, texture = APPEARANCES[appearance]
    bg = _background(rng, size, spec.clutter)
    bg_lum = _luminance(bg.mean(axis=(0, 1)))
    colour_a = _contrasting_colour(rng, bg_lum, 0.3)
    colour_b = _contrasting_colour(rng, _luminance(colour_a), 0.2)
    marker = np.ones(3) if _luminance(colour_a) < 0.5 else np.zeros(3)

    radius = rng.uniform(*spec.object_size) * size
    s, spin = _trajectory(motion, frames, rng)
    length = rng.uniform(*spec.path_length) * size  # distance travelled in the clip
    direction = rng.uniform(0, 2 * math.pi)
    d = np.array([math.cos(direction), math.sin(direction)])
    s = (s - (s.max() + s.min()) / 2) * length  # pixels along d, centred on the middle of the path's extent
    half = np.abs(d) * np.abs(s).max()
    lo, hi = radius + half, size - radius - half
    centre = np.where(lo < hi, rng.uniform(0, 1, 2) * (hi - lo) + lo, size / 2)
    pos = centre + s[:, None] * d  # F×2 (x, y)
    angle = rng.uniform(0, 2 * math.pi) + spin * np.linspace(0, 1, frames)

    f32 = np.float32
    y, x = (np.mgrid[0:size, 0:size] + 0.5).astype(f32)
    dx = (x[None] - pos[:, 0, None, None].astype(f32)) / f32(radius)
    dy = (y[None] - pos[:, 1, None, None].astype(f32)) / f32(radius)
    cos, sin = np.cos(angle).astype(f32)[:, None, None], np.sin(angle).astype(f32)[:, None, None]
    qx, qy = cos * dx + sin * dy, -sin * dx + cos * dy  # object coordinates (rotate by -angle)

    alpha = np.clip(0.5 - _shape_sdf(shape, qx, qy) * f32(radius), 0, 1)
    t = _texture(texture, qx, qy, rng)
    m = np.clip(0.5 - (np.hypot(qx - f32(0.35), qy) - f32(0.17)) * f32(radius), 0, 1)
    noise = rng.standard_normal((3, frames, size, size), dtype=f32) * f32(spec.noise)
    video = np.empty((frames, size, size, 3), dtype=np.uint8)
    for c in range(3):  # per channel: contiguous F×S×S arrays, much faster than broadcasting over RGB
        colour = f32(colour_a[c]) + t * f32(colour_b[c] - colour_a[c])
        colour += m * (f32(marker[c]) - colour)
        background = bg[..., c].astype(f32)
        value = background + alpha * (colour - background) + noise[c]
        video[..., c] = np.clip(value, 0, 1) * 255 + 0.5
    return video


def write_mp4(
    path: str, frames: np.ndarray, fps: float = 16, gop: int | None = None, bframes: int | None = None
) -> None:
    """Write uint8 F×H×W×3 frames as an H.264 mp4 (MPEG-4 Part 2 if this FFmpeg lacks libx264).

    `gop` is the keyframe interval and `bframes` the number of B-frames (encoder defaults when None).
    """
    av = pyav()
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fractions.Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            # mbtree off: with it, x264's output depends on uninitialised memory (differs run to run).
            x264 = ["mbtree=0"] + ([f"keyint={gop}", f"min-keyint={gop}", "scenecut=0"] if gop is not None else [])
            options = {"crf": "18", "preset": "veryfast", "threads": "1", "x264-params": ":".join(x264)}
        else:
            options = {"qscale": "2"}
        if gop is not None:
            options.update(g=str(gop), keyint_min=str(gop))
        if bframes is not None:
            options["bf"] = str(bframes)
        stream.options = options
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


INDEX_BITS = 16  # frames carry their index as 2 rows × 8 columns of black/white cells


def index_pattern(num_frames: int, height: int = 64, width: int = 64) -> np.ndarray:
    """uint8 F×H×W×3 frames where frame i shows i in binary (cell k white = bit k set); see `decode_index`."""
    if num_frames > 2**INDEX_BITS:
        raise ValueError(f"at most {2**INDEX_BITS} frames can carry their index")
    bits = (np.arange(num_frames)[:, None] >> np.arange(INDEX_BITS)) & 1  # F×16
    cells = bits.reshape(num_frames, 2, 8).astype(np.uint8) * 255
    rows = np.repeat(cells, -(-height // 2), axis=1)[:, :height]
    frames = np.repeat(rows, -(-width // 8), axis=2)[:, :, :width]
    return np.repeat(frames[..., None], 3, axis=3)


def decode_index(frames: np.ndarray) -> np.ndarray:
    """Frame indices shown by `index_pattern` frames (…×H×W×3, values 0..255) as an int array of shape …."""
    gray = np.asarray(frames, dtype=np.float64).mean(-1)
    h, w = gray.shape[-2:]
    rows = [(r * h // 2 + h // 8, (r + 1) * h // 2 - h // 8) for r in range(2)]  # cell interiors
    cols = [(c * w // 8 + w // 32, (c + 1) * w // 8 - w // 32) for c in range(8)]
    bits = np.stack([gray[..., r0:r1, c0:c1].mean((-1, -2)) > 127.5 for r0, r1 in rows for c0, c1 in cols], axis=-1)
    return (bits * (1 << np.arange(INDEX_BITS))).sum(-1)


def write_index_video(
    path: str,
    num_frames: int,
    height: int = 64,
    width: int = 64,
    fps: float = 30,
    gop: int | None = 8,
    bframes: int | None = 2,
) -> None:
    """An mp4 whose frames show their own index (for frame-exactness tests and benchmarks)."""
    write_mp4(path, index_pattern(num_frames, height, width), fps, gop=gop, bframes=bframes)


def _write_one(job: tuple) -> None:
    spec, seed, index, motion, appearance, path = job
    write_mp4(path, render_scene(spec, seed, index, motion, appearance), spec.fps)


# ----------------------------------------------------------------------------- dataset


def write_dataset(
    out: str,
    num_videos: int = 480,
    frames: int = 16,
    size: int = 64,
    seed: int = 0,
    workers: int | None = None,
    val_fraction: float = 0.25,
    motions: Sequence[str] = DEFAULT_MOTIONS,
    appearances: Sequence[str] = tuple(APPEARANCES),
    spec: SynthSpec | None = None,
    force: bool = False,
) -> dict:
    """Render `num_videos` scenes into `out` (layout in the module docstring); returns the synth.json summary.

    `spec` overrides the rendering parameters (its frames and size are replaced by the arguments).
    """
    check_request(num_videos, frames, size, val_fraction, motions, appearances)
    videos_dir = empty_videos_dir(out, force)
    spec = dataclasses.replace(spec or SynthSpec(), frames=frames, size=size)
    scenes = plan_scenes(num_videos, seed, val_fraction, motions, appearances)
    jobs = [
        (spec, seed, i, scene.motion, scene.appearance, os.path.join(videos_dir, scene.name))
        for i, scene in enumerate(scenes)
    ]

    start = time.perf_counter()
    workers = render(jobs, workers)
    seconds = time.perf_counter() - start

    write_lists(out, scenes, motions, appearances)
    summary = {
        "num_videos": num_videos,
        "num_train": sum(not s.val for s in scenes),
        "num_val": sum(s.val for s in scenes),
        "seed": seed,
        "motion_classes": list(motions),
        "appearance_classes": list(appearances),
        "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()},
    }
    # synth.json last, so that it only exists beside complete lists (the demo takes it as "the data is there")
    atomic_write_text(os.path.join(out, "synth.json"), json.dumps(summary, indent=2))
    return {**summary, "seconds": seconds, "workers": workers}


def check_request(
    num_videos: int, frames: int, size: int, val_fraction: float, motions: Sequence[str], appearances: Sequence[str]
) -> None:
    """A UserError for a dataset that cannot be made: unknown or too few classes, too few videos or frames."""
    unknown = [m for m in motions if m not in MOTIONS] + [a for a in appearances if a not in APPEARANCES]
    if unknown:
        raise UserError(
            f"unknown class {unknown[0]!r}; motions: {', '.join(MOTIONS)}; appearances: {', '.join(APPEARANCES)}"
        )
    if len(set(motions)) < 2 or len(set(appearances)) < 2:
        raise UserError("need at least two motion classes and two appearance classes")
    if num_videos < 2 or frames < 2 or size < 16 or size % 2:
        raise UserError("need --num-videos >= 2, --frames >= 2 and an even --size >= 16")
    if not 0 < val_fraction < 1:
        raise UserError(f"val fraction must be between 0 and 1, got {val_fraction}")


def empty_videos_dir(out: str, force: bool) -> str:
    """out/videos, created empty; one that holds files is replaced only with `force`."""
    videos_dir = os.path.join(out, "videos")
    if os.path.isdir(videos_dir) and os.listdir(videos_dir):
        if not force:
            raise UserError(f"{videos_dir} already holds files; choose another --out or pass --force to replace them")
        shutil.rmtree(videos_dir)
    os.makedirs(videos_dir, exist_ok=True)
    return videos_dir


@dataclass(frozen=True)
class Scene:
    name: str  # file name in out/videos
    motion: str
    motion_label: int
    appearance: str
    appearance_label: int
    val: bool  # in the validation split


def plan_scenes(
    num_videos: int, seed: int, val_fraction: float, motions: Sequence[str], appearances: Sequence[str]
) -> list[Scene]:
    """Every scene's labels (balanced over classes) and split, from `seed` alone."""
    rng = np.random.default_rng([seed, 2**31])  # labels and split; scene i is rendered from [seed, i]
    motion_labels = rng.permutation(np.arange(num_videos) % len(motions))
    appearance_labels = rng.permutation(np.arange(num_videos) % len(appearances))
    is_val = np.zeros(num_videos, dtype=bool)
    is_val[rng.permutation(num_videos)[: max(1, int(round(num_videos * val_fraction)))]] = True
    return [
        Scene(f"{i:06d}.mp4", motions[m], int(m), appearances[a], int(a), bool(v))
        for i, (m, a, v) in enumerate(zip(motion_labels, appearance_labels, is_val))
    ]


def render(jobs: list[tuple], workers: int | None) -> int:
    """Write every job's video (`_write_one`) with `workers` processes (default: all CPUs); returns how many."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers > 1:
        with multiprocessing.get_context("spawn" if os.name == "nt" else "fork").Pool(workers) as pool:
            pool.map(_write_one, jobs, chunksize=max(1, len(jobs) // (workers * 8)))
    else:
        for job in jobs:
            _write_one(job)
    return workers


def write_lists(out: str, scenes: list[Scene], motions: Sequence[str], appearances: Sequence[str]) -> None:
    """Both tasks' train / val lists and class names, and scenes.csv, each written atomically."""
    for task, classes, labels in (
        ("motion", motions, [s.motion_label for s in scenes]),
        ("appearance", appearances, [s.appearance_label for s in scenes]),
    ):
        folder = os.path.join(out, task)
        for split, in_split in (("train", False), ("val", True)):
            atomic_write_text(
                os.path.join(folder, f"{split}.csv"),
                "".join(f"../videos/{s.name} {label}\n" for s, label in zip(scenes, labels) if s.val == in_split),
            )
        atomic_write_text(os.path.join(folder, "classes.txt"), "".join(f"{c}\n" for c in classes))
    atomic_write_text(
        os.path.join(out, "scenes.csv"),
        "path,split,motion,appearance\n"
        + "".join(f"videos/{s.name},{'val' if s.val else 'train'},{s.motion},{s.appearance}\n" for s in scenes),
    )
