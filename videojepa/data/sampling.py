"""Which frames make a clip: frame-index sampling, independent of decoding.

A clip is `frames_per_clip` frame indices spaced by a step: `frame_step` frames, or, when a target `fps`
is given, `video_fps / fps` frames (fractional steps are rounded to the nearest frame, so a 30 fps video
sampled at 12 fps takes frames 0, 3, 5, 8, 10, ...; halves round up). The span of a clip is its last offset + 1.

With `num_clips` = K the usable frames are cut into K equal segments and clip k lies inside segment k:
a random start inside the segment for training (`rng` given), the centred start for evaluation
(`rng=None`). When a segment is shorter than a clip but the video is not, the clips overlap: clip k
starts inside the k-th of K equal parts of the range of valid starts.

With a target `fps` the clip's frames lie on the video's RESAMPLED GRID: grid frame j is source frame
round(j * step) (halves up), for every j whose frame exists, and a clip is `frames_per_clip` consecutive
grid frames. Starts (random or centred, per segment, as above) are drawn in grid frames, so the frames a
clip can show are exactly those of the video resampled to `fps`; that is what `videojepa data prepare`
stores, and why a prepared copy yields the same clips as its original (see `prepare`). With `frame_step`
a clip may start on any frame.

A video shorter than one clip is handled by the `short_video` policy:
  - "repeat_last": indices past the end are clamped to the last frame (the clip freezes at the end);
  - "loop": indices wrap around to the start (the video plays again);
  - "skip": the video is rejected (`ShortVideoError`), and the dataset treats it as a bad file.
Every clip of a short video is the same.
"""

from __future__ import annotations

import numpy as np

SHORT_VIDEO_POLICIES = ("repeat_last", "loop", "skip")


class ShortVideoError(ValueError):
    """The video has fewer frames than one clip spans and the policy is "skip"."""


def clip_step(video_fps: float | None, frame_step: int, fps: float | None) -> float:
    """Frames between consecutive clip frames: `frame_step`, or `video_fps / fps` when fps is set."""
    if fps is None:
        return float(frame_step)
    if not video_fps:
        raise ValueError("the video's frame rate is unknown, so it cannot be resampled to data.fps")
    return video_fps / fps


def clip_offsets(frames_per_clip: int, step: float) -> np.ndarray:
    """Frame offsets of one clip relative to its first frame."""
    return np.floor(np.arange(frames_per_clip) * step + 0.5).astype(np.int64)


def grid_frames(indices, step: float) -> np.ndarray:
    """Source frame of each resampled-grid frame index (frame j of the video resampled by `step`)."""
    return np.floor(np.asarray(indices, dtype=np.int64) * step + 0.5).astype(np.int64)


def grid_range(start: int, end: int, step: float) -> tuple[int, int]:
    """Grid frames [g0, g1) whose source frames lie in [start, end)."""

    def first_at_or_after(frame: int) -> int:  # smallest j with round(j * step) >= frame
        j = max(0, int(np.ceil((frame - 0.5) / step)) - 1)
        while grid_frames(j, step) < frame:
            j += 1
        return j

    return first_at_or_after(start), first_at_or_after(end)


def sample_clips(
    num_frames: int,
    frames_per_clip: int,
    step: float,
    num_clips: int = 1,
    rng: np.random.Generator | None = None,
    short_video: str = "repeat_last",
    start: int = 0,
    end: int | None = None,
    grid: bool = False,
) -> np.ndarray:
    """Frame indices of `num_clips` clips from frames [start, end) of a video: int64 array K×T.

    `rng` None means deterministic (evaluation) placement; otherwise starts are drawn from it. `grid`: clips
    are consecutive frames of the video resampled by `step` (the `fps` rule of the module docstring).
    """
    if short_video not in SHORT_VIDEO_POLICIES:
        raise ValueError(f"short_video must be one of {SHORT_VIDEO_POLICIES}, got {short_video!r}")
    end = num_frames if end is None else min(end, num_frames)
    if grid:
        if end - start <= 0:
            raise ValueError(f"empty frame range [{start}, {end}) in a video of {num_frames} frames")
        g0, g1 = grid_range(start, end, step)
        if g1 <= g0:  # no grid frame inside the range: its first frame is the whole resampled video
            return np.full((num_clips, frames_per_clip), start, dtype=np.int64)
        on_grid = sample_clips(g1, frames_per_clip, 1.0, num_clips, rng, short_video, g0, g1)
        return grid_frames(on_grid, step)
    n = end - start
    if n <= 0:
        raise ValueError(f"empty frame range [{start}, {end}) in a video of {num_frames} frames")
    offsets = clip_offsets(frames_per_clip, step)
    span = int(offsets[-1]) + 1

    if n < span:
        if short_video == "skip":
            raise ShortVideoError(f"too short: {n} frames, a clip spans {span}")
        clip = offsets % n if short_video == "loop" else np.minimum(offsets, n - 1)
        return np.tile(start + clip, (num_clips, 1))

    segment = n // num_clips
    last_start = n - span  # valid starts are 0..last_start
    clips = np.empty((num_clips, frames_per_clip), dtype=np.int64)
    for k in range(num_clips):
        if segment >= span:  # clip k inside segment k
            lo = k * segment
            hi = lo + segment - span
        else:  # overlapping clips: clip k starts in the k-th part of 0..last_start
            lo = min(k * (last_start + 1) // num_clips, last_start)
            hi = max(lo, (k + 1) * (last_start + 1) // num_clips - 1)
        first = int(rng.integers(lo, hi + 1)) if rng is not None else (lo + hi) // 2
        clips[k] = start + first + offsets
    return clips
