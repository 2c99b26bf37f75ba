"""Clips centred on annotated keyframes (AVA's protocol): which video, which frames, and the clip tensors.

    keyframes = locate_keyframes(rows, "ava/videos", "ava_train_v2.2.csv", time_offset=0.0)
    dataset = KeyframeClips(list(keyframes.values()), frames_per_clip=16, frame_step=4, crop_size=224, ...)
    dataset[0]  # {"video": float C x T x S x S, "index": 0}

A video id names a file `<video_id>.<extension>` in the videos folder (any of `VIDEO_EXTENSIONS`; AVA's
downloads are .mkv, .mp4 and .webm). A keyframe at `timestamp` seconds is frame
round((timestamp - time_offset) * fps) of that file, fps as the file reports it: time_offset 0 for AVA's full
movies (keyframes at 902..1798 s) and for `videojepa data synth`'s videos (timestamp = frame / fps), 900 for
the 15-minute cuts that start at 900 s. Its clip is `frames_per_clip` frames `step` apart (`frame_step`, or
video fps / `fps` when that is set) with the keyframe at position frames_per_clip // 2 (for 16 frames: 8
before it, 7 after, as SlowFast centres its clips); indices past either end of the video repeat the first or
last frame. The whole frame is resized to crop_size x crop_size, with no crop (the boxes are fractions of the
whole frame and stay so), and normalised with mean and std.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import torch

from videojepa.data.ava import BoxRow
from videojepa.data.readers import VIDEO_EXTENSIONS, BadFileError, open_video
from videojepa.data.sampling import clip_offsets, clip_step
from videojepa.data.transforms import ClipTransform, resize
from videojepa.errors import UserError


@dataclass(frozen=True)
class Keyframe:
    key: str  # `videojepa.data.ava.frame_key`
    video_id: str
    timestamp: str
    path: str  # the video file
    frame: int  # index of the keyframe in the file
    num_frames: int
    fps: float | None


def find_video(videos_dir: str | Path, video_id: str) -> Path | None:
    """The file `<video_id>.<ext>` in `videos_dir` (the first of `VIDEO_EXTENSIONS` that exists), or None."""
    for ext in VIDEO_EXTENSIONS:
        path = Path(videos_dir) / f"{video_id}{ext}"
        if path.is_file():
            return path
    return None


def locate_keyframes(
    rows: list[BoxRow], videos_dir: str | Path, source: str | Path, time_offset: float = 0.0, decoder: str = "pyav"
) -> dict[str, Keyframe]:
    """The keyframe of every distinct (video_id, timestamp) of `rows` (read from the file `source`), in row
    order. Opens each video once (frame count and rate). Raises `UserError` naming `source`'s line for a video id
    with no video, an unreadable video, or a timestamp outside its video."""
    if not Path(videos_dir).is_dir():
        raise UserError(f"videos folder not found: {videos_dir}")
    videos: dict[str, tuple[Path, int, float | None]] = {}
    keyframes: dict[str, Keyframe] = {}
    for row in rows:
        key = row.key
        if key in keyframes:
            continue
        if row.video_id not in videos:
            path = find_video(videos_dir, row.video_id)
            if path is None:
                raise UserError(
                    f"{source}:{row.line}: video_id {row.video_id!r} has no video in {videos_dir} "
                    f"(looked for {row.video_id}{{{','.join(VIDEO_EXTENSIONS[:4])},...}})"
                )
            try:
                with open_video(str(path), backend=decoder) as reader:
                    videos[row.video_id] = (path, reader.num_frames, reader.fps)
            except BadFileError as err:
                raise UserError(f"{source}:{row.line}: video {path} cannot be read ({err.reason})") from None
        path, num_frames, fps = videos[row.video_id]
        if not fps:
            raise UserError(f"{source}:{row.line}: video {path} has no frame rate, so timestamps cannot be located")
        seconds = float(Decimal(row.timestamp) - Decimal(str(time_offset)))
        frame = int(np.floor(seconds * fps + 0.5))
        if not 0 <= frame < num_frames:
            raise UserError(
                f"{source}:{row.line}: timestamp {row.timestamp} is frame {frame} of {path}, which has frames "
                f"0..{num_frames - 1} at {fps:g} fps (data.time_offset={time_offset:g} s is subtracted first; "
                f"AVA's 15-minute cuts start at 900 s)"
            )
        keyframes[key] = Keyframe(key, row.video_id, row.timestamp, str(path), frame, num_frames, fps)
    return keyframes


def centred_clip(frame: int, frames_per_clip: int, step: float, num_frames: int) -> np.ndarray:
    """Frame indices of the clip with `frame` at position frames_per_clip // 2, clamped to the video."""
    offsets = clip_offsets(frames_per_clip, step)
    return np.clip(frame - offsets[frames_per_clip // 2] + offsets, 0, num_frames - 1)


class KeyframeClips(torch.utils.data.Dataset):
    """The clip of each keyframe, as the module docstring describes. Items: {"video": float C x T x S x S,
    "index": position in `keyframes`}. Consecutive items of one video reuse its open reader."""

    def __init__(
        self,
        keyframes: list[Keyframe],
        frames_per_clip: int,
        frame_step: int,
        crop_size: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        fps: float | None = None,
        decoder: str = "pyav",
        decode_threads: int = 1,
    ):
        self.keyframes = keyframes
        self.frames_per_clip, self.frame_step, self.fps = frames_per_clip, frame_step, fps
        self.crop_size, self.decoder, self.decode_threads = crop_size, decoder, decode_threads
        self.transform = ClipTransform(crop_size, mean, std, train=False)
        self._reader = None  # (path, reader) of the last video read, per process

    def __len__(self) -> int:
        return len(self.keyframes)

    def indices(self, index: int) -> np.ndarray:
        kf = self.keyframes[index]
        return centred_clip(kf.frame, self.frames_per_clip, clip_step(kf.fps, self.frame_step, self.fps), kf.num_frames)

    def frames(self, index: int, indices=None) -> torch.Tensor:
        """The clip's frames as decoded (or those at `indices`): uint8 T x H x W x 3."""
        path = self.keyframes[index].path
        if self._reader is None or self._reader[0] != path:
            self.close()
            try:
                self._reader = (path, open_video(path, backend=self.decoder, threads=self.decode_threads))
            except BadFileError as err:
                raise UserError(f"video {path} cannot be read ({err.reason})") from None
        try:
            return self._reader[1].read(self.indices(index) if indices is None else indices)
        except BadFileError as err:
            raise UserError(f"video {path} cannot be read ({err.reason})") from None

    def keyframe_image(self, index: int) -> torch.Tensor:
        """The keyframe itself, as decoded: uint8 H x W x 3."""
        return self.frames(index, [self.keyframes[index].frame])[0]

    def __getitem__(self, index: int) -> dict:
        frames = resize(self.frames(index), (self.crop_size, self.crop_size))
        return {"video": self.transform.normalize(frames), "index": index}

    def close(self) -> None:
        if self._reader is not None:
            self._reader[1].close()
            self._reader = None

    def __getstate__(self):  # worker processes open their own readers
        state = dict(self.__dict__)
        state["_reader"] = None
        return state
