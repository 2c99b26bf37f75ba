"""`videojepa data check`: decode every file of a dataset, list the bad ones, measure decode speed.

Every frame of every video is decoded (in chunks, so memory stays small), which finds truncation and
corruption anywhere in a file, not only at the start. Then one clip per usable video is read the way
training reads it (seek + decode of `frames_per_clip` frames `frame_step` apart), to give the clip
decode throughput. Videos shorter than one clip are listed separately: they are usable, and
`data.short_video` decides what they give.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field

from videojepa.data.datasets import Entry, read_entries
from videojepa.data.readers import BadFileError, open_video, read_image
from videojepa.data.sampling import clip_offsets, clip_step, sample_clips

CHUNK = 64  # frames decoded per read during the full check
MAX_SHORT_LISTED = 10


@dataclass
class FileResult:
    path: str
    frames: int = 0
    reason: str | None = None  # why the file is bad, None when it is fine
    short: bool = False  # fewer frames than one clip spans
    check_seconds: float = 0.0
    clip_seconds: float = 0.0  # time to read one training clip


@dataclass
class CheckReport:
    source: str
    workers: int
    seconds: float
    results: list[FileResult] = field(default_factory=list)

    @property
    def bad(self) -> list[FileResult]:
        return [r for r in self.results if r.reason]

    @property
    def short(self) -> list[FileResult]:
        return [r for r in self.results if r.short and not r.reason]

    def summary(self) -> dict:
        good = [r for r in self.results if not r.reason]
        frames = sum(r.frames for r in good)
        check_s = sum(r.check_seconds for r in self.results)
        clip_s = sum(r.clip_seconds for r in good)
        return {
            "source": self.source,
            "files": len(self.results),
            "ok": len(good),
            "bad": len(self.bad),
            "short": len(self.short),
            "frames": frames,
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
            "files_per_s": round(len(self.results) / max(self.seconds, 1e-9), 2),
            "frames_per_s": round(frames / max(check_s, 1e-9) * self.workers, 1),
            "clips_per_s": round(len(good) / max(clip_s, 1e-9) * self.workers, 2),
            "bad_files": [{"path": r.path, "reason": r.reason} for r in self.bad],
            "short_files": [{"path": r.path, "frames": r.frames} for r in self.short],
        }


def check_file(
    entry: Entry, frames_per_clip: int = 16, frame_step: int = 4, fps: float | None = None, decoder: str = "pyav"
) -> FileResult:
    """Decode all of one file; on success also time the read of one centred training clip."""
    result = FileResult(entry.path)
    start = time.perf_counter()
    try:
        if entry.is_image:
            read_image(entry.path)
            result.frames = 1
        else:
            with open_video(entry.path, backend=decoder) as reader:
                for first in range(0, reader.num_frames, CHUNK):
                    reader.read(range(first, min(first + CHUNK, reader.num_frames)))
                result.frames = reader.num_frames
            result.check_seconds = time.perf_counter() - start
            start = time.perf_counter()
            with open_video(entry.path, backend=decoder) as reader:
                step = clip_step(reader.fps, frame_step, fps)
                result.short = reader.num_frames < clip_offsets(frames_per_clip, step)[-1] + 1
                clip = sample_clips(reader.num_frames, frames_per_clip, step, short_video="repeat_last")
                reader.read(clip[0])
            result.clip_seconds = time.perf_counter() - start
            return result
    except BadFileError as err:
        result.reason = err.reason
    except ValueError as err:  # e.g. an unknown frame rate with fps set
        result.reason = str(err)
    result.check_seconds = time.perf_counter() - start
    return result


def _check_job(args) -> FileResult:
    return check_file(*args)


def check_dataset(
    path: str,
    frames_per_clip: int = 16,
    frame_step: int = 4,
    fps: float | None = None,
    workers: int = 1,
    decoder: str = "pyav",
) -> CheckReport:
    """Check every file listed by the CSV or found in the folder at `path`."""
    entries, _ = read_entries(path)
    workers = max(1, min(workers, len(entries)))
    jobs = [(e, frames_per_clip, frame_step, fps, decoder) for e in entries]
    start = time.perf_counter()
    if workers > 1:
        with multiprocessing.get_context("spawn" if os.name == "nt" else "fork").Pool(workers) as pool:
            results = pool.map(_check_job, jobs, chunksize=max(1, len(jobs) // (workers * 8)))
    else:
        results = [_check_job(job) for job in jobs]
    return CheckReport(str(path), workers, time.perf_counter() - start, results)


def format_report(report: CheckReport, as_json: bool = False) -> str:
    """Human-readable (or JSON) text of a check report."""
    s = report.summary()
    if as_json:
        return json.dumps(s, indent=2)
    lines = [
        f"checked {s['files']} files ({s['frames']} frames) in {s['seconds']:.2f} s with {s['workers']} "
        f"worker(s): {s['ok']} ok, {s['bad']} bad, {s['short']} shorter than one clip",
        f"throughput: {s['files_per_s']:.1f} files/s, full decode {s['frames_per_s']:.0f} frames/s, "
        f"clip decode {s['clips_per_s']:.1f} clips/s",
    ]
    lines += [f"BAD   {r['path']}: {r['reason']}" for r in s["bad_files"]]
    short = s["short_files"]
    lines += [f"SHORT {r['path']}: {r['frames']} frames, fewer than one clip spans" for r in short[:MAX_SHORT_LISTED]]
    if len(short) > MAX_SHORT_LISTED:
        lines.append(f"SHORT ... and {len(short) - MAX_SHORT_LISTED} more (all listed with --json)")
    return "\n".join(lines)
