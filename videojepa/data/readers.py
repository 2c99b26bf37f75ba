"""Frame-exact video decoding behind a small reader interface.

A reader gives random access to the frames of one file by FRAME INDEX (0-based, presentation order):
`reader.read([0, 4, 8])` returns exactly those frames as a uint8 tensor of shape T×H×W×3 (RGB), in the
order asked (repeats allowed). `num_frames` and `fps` describe the file. Any problem with the file itself
(missing, empty, not a video, unsupported codec, truncated, corrupt) raises `BadFileError` with a short
human-readable reason; callers decide whether to skip it.

The PyAV backend builds a frame table (`FrameIndex`) when it opens a file: it demuxes the packets (no
decoding) and records every frame's presentation timestamp and whether it is a keyframe. On a long video
that scan is a large part of a clip's cost, so a caller that knows the table (a prepared copy's manifest,
see `prepare`) passes it as `index=` and the file is opened without scanning. `read` then seeks to the
nearest keyframe at or before the first wanted frame, decodes forward, converts only the wanted frames to
RGB and stops after the last one; it seeks again rather than decoding across a gap that contains a later
keyframe. Decoded frames are matched to indices by timestamp, so the result is exact whatever the GOP
structure (B-frames included). The decoder's position is kept between calls, so reading a long video
in consecutive chunks decodes each frame once. `frames_decoded` counts the work, for tests and benchmarks.

Another backend is a class with the same three members (`num_frames`, `fps`, `read`) plus `close`,
registered with `register_backend(name, cls)`.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts")


def pyav():
    """PyAV, imported when a file is first decoded or encoded, so that `import videojepa` (configs, models,
    training on tensors) works where it is not installed; a one-line error says what is missing."""
    try:
        import av
    except ImportError as err:
        raise ImportError(f"decoding or writing video needs PyAV (`pip install av`): {err}") from None
    return av


class BadFileError(Exception):
    """A media file that cannot be used; `reason` says why in a few words."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


class VideoReader(abc.ABC):
    """Interface: random access to one file's frames by index. Use as a context manager."""

    path: str
    num_frames: int
    fps: float | None

    @abc.abstractmethod
    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at `indices` as uint8 T×H×W×3."""

    def close(self) -> None:  # noqa: B027 - a reader that holds no resource need not override it
        """Release the file (a reader holding nothing keeps this no-op)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class FrameIndex:
    """A video stream's frame table: presentation timestamps (stream time base, ascending) and keyframe flags."""

    pts: np.ndarray  # int64, one per frame, sorted
    keyframe: np.ndarray  # bool, one per frame; frame 0 always True
    fps: float | None

    @property
    def num_frames(self) -> int:
        return len(self.pts)


def scan_index(container, stream, path: str) -> FrameIndex:
    """Demux every packet of `stream` (no decoding) into its frame table; raises `BadFileError`."""
    av = pyav()
    rate = stream.average_rate or stream.guessed_rate
    pts, keys = [], []
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            t = packet.pts if packet.pts is not None else packet.dts
            pts.append(len(pts) if t is None else t)
            keys.append(packet.is_keyframe)
    except av.error.FFmpegError as err:
        raise BadFileError(path, f"corrupt container after {len(pts)} frames ({_ffmpeg_message(err)})") from None
    if not pts:
        raise BadFileError(path, "no video frames")
    if stream.frames and len(pts) < stream.frames:
        raise BadFileError(path, f"truncated: header says {stream.frames} frames, file holds {len(pts)}")
    order = np.argsort(pts, kind="stable")
    is_key = np.asarray(keys, dtype=bool)[order]
    is_key[0] = True  # decoding always can start at the stream start
    return FrameIndex(np.asarray(pts, dtype=np.int64)[order], is_key, float(rate) if rate else None)


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise BadFileError(path, "file not found")
    if os.path.isdir(path):
        raise BadFileError(path, "is a directory, not a media file")
    if os.path.getsize(path) == 0:
        raise BadFileError(path, "empty file (0 bytes)")


class PyAVReader(VideoReader):
    """PyAV (FFmpeg) backend. `threads` > 1 enables FFmpeg's own decoding threads (0 = automatic).

    `index`: the file's frame table, known in advance (e.g. from a prepared copy's manifest): no scan.
    """

    def __init__(self, path: str, threads: int = 1, index: FrameIndex | None = None):
        av = pyav()
        from av.video.reformatter import VideoReformatter

        self.path = str(path)
        self.frames_decoded = 0
        self._rgb = VideoReformatter()  # reused, single-threaded: skips a per-frame setup and thread start
        _check_file(self.path)
        try:
            self._container = av.open(self.path)
        except av.error.FFmpegError as err:
            raise BadFileError(self.path, f"not a readable media file ({_ffmpeg_message(err)})") from None
        try:
            self._open_stream(threads, index)
        except BaseException:
            self._container.close()
            raise

    def _open_stream(self, threads: int, index: FrameIndex | None) -> None:
        if not self._container.streams.video:
            raise BadFileError(self.path, "no video stream")
        self._stream = stream = self._container.streams.video[0]
        if stream.codec_context is None:
            raise BadFileError(self.path, "unsupported codec: FFmpeg has no decoder for this video stream")
        if threads != 1:
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = threads
        if index is None:
            index = scan_index(self._container, stream, self.path)
        self.fps = index.fps
        self._pts = index.pts
        # _key_before[i]: index of the last keyframe at or before frame i.
        self._key_before = np.maximum.accumulate(np.where(index.keyframe, np.arange(len(self._pts)), 0))
        self.num_frames = len(self._pts)
        self._frames, self._pos = None, -1  # the running decoder (see read) and its last frame index

    def _frame_at(self, pts: int | None, default: int) -> int:
        """The frame index of timestamp `pts` (`default` when it has none or an unknown one)."""
        if pts is None:
            return default
        i = int(np.searchsorted(self._pts, pts))
        return i if i < len(self._pts) and self._pts[i] == pts else default

    def _decode_from(self, start: int) -> Iterator[tuple[int, object]]:
        """Seek to keyframe `start` and yield (frame index, frame) in presentation order."""
        self._container.seek(int(self._pts[start]), stream=self._stream, backward=True, any_frame=False)
        prev, first = -1, True
        for frame in self._container.decode(self._stream):
            index = self._frame_at(frame.pts, prev + 1)
            if first and index > start and start > 0:
                # The demuxer landed after the keyframe we asked for: restart from the beginning.
                yield from self._decode_from(0)
                return
            first, prev = False, index
            self.frames_decoded += 1
            yield index, frame

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        av = pyav()
        indices = [int(i) for i in indices]
        if not indices:
            raise ValueError("read() needs at least one frame index")
        bad = [i for i in indices if not 0 <= i < self.num_frames]
        if bad:
            raise ValueError(f"{self.path}: frame index {bad[0]} outside 0..{self.num_frames - 1}")
        wanted = sorted(set(indices))
        wanted_set = set(wanted)
        got: dict[int, np.ndarray] = {}
        # The decoding position survives between calls, so sequential reads never seek back.
        frames, pos = self._frames, self._pos
        try:
            for w in wanted:
                if w in got:
                    continue
                if frames is None or w <= pos or self._key_before[w] > pos + 1:
                    frames, pos = self._decode_from(int(self._key_before[w])), -1
                for pos, frame in frames:
                    if pos in wanted_set and pos not in got:
                        got[pos] = self._rgb.reformat(frame, format="rgb24", threads=1).to_ndarray()
                    if pos >= w:
                        break
                if w not in got:
                    reason = f"truncated or corrupt: frame {w} of {self.num_frames} cannot be decoded"
                    raise BadFileError(self.path, reason)
        except av.error.FFmpegError as err:
            frames = None
            raise BadFileError(self.path, f"corrupt data near frame {pos + 1} ({_ffmpeg_message(err)})") from None
        finally:
            self._frames, self._pos = frames, pos
        return torch.from_numpy(np.stack([got[i] for i in indices]))

    def close(self) -> None:
        # Drop the running decoder first: it refers back to this reader, a cycle that would otherwise leave
        # FFmpeg objects to the garbage collector, possibly inside a forked DataLoader worker.
        if getattr(self, "_frames", None) is not None:
            self._frames.close()
        self._frames, self._rgb = None, None
        self._container.close()


def _ffmpeg_message(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)


_BACKENDS: dict[str, Callable[..., VideoReader]] = {"pyav": PyAVReader}


def register_backend(name: str, cls: Callable[..., VideoReader]) -> None:
    """Make a reader class available as `open_video(path, backend=name)`."""
    _BACKENDS[name] = cls


def open_video(path: str, backend: str = "pyav", **kwargs) -> VideoReader:
    """Open `path` with the named backend; raises `BadFileError` if the file is unusable."""
    if backend not in _BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; available: {sorted(_BACKENDS)}")
    return _BACKENDS[backend](path, **kwargs)


def read_image(path: str) -> torch.Tensor:
    """One image file as a uint8 H×W×3 tensor (decoded by FFmpeg through PyAV)."""
    with open_video(path) as reader:
        return reader.read([0])[0]
