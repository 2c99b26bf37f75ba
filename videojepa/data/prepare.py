"""`videojepa data prepare SRC OUT`: re-encode a dataset once, small and seekable, for cheap training reads.

Every video of SRC (a list, CSV, folder or file, as the datasets read them) is decoded once and written to
OUT as H.264 (MPEG-4 Part 2 where this FFmpeg lacks libx264) with
  - the short side at most `short_side` pixels (256 for 224-pixel crops; never upscaled, even sides);
  - only the frames the sampler can use: with `fps` the video resampled to that rate, i.e. the frames on
    the sampler's resampled grid (see `sampling`), so training with `data.fps` equal to it decodes no frame
    in between; without `fps` every frame (for `data.frame_step` training);
  - a keyframe every `gop_seconds` (one second: a seek decodes at most one second of frames), no B-frames,
    and x264's fastdecode tuning (no CABAC, no deblocking: about half the decoding CPU for ~20% more disk).
Alongside: the list in the source's own form (a space-separated `path label` list, a headed CSV, or a
mirrored class-per-folder tree), `classes.txt` when the source has class names, and the manifest (see
`manifest`) with each video's frame count, fps, duration and frame table, so the reader opens a prepared
file without scanning it. Paths keep their layout relative to the common folder of the list and its files
(`../videos/x.mp4` stays `../videos/x.mp4`); labels carry over; `start_frame`/`end_frame` are moved to the
resampled frames. A prepared copy yields the same clips as its original: the same frame indices of the
original for the same sampler seed, with the pixels of the re-encode.

Runs in parallel processes with a progress bar. Each finished video is appended to a log in OUT
(`.<list stem>.prepare.jsonl`); a killed run, started again, reuses what the log records (when the output
file and the source are unchanged) and produces the same manifest. Unreadable sources are reported with
their reason and skipped (and left out of the list); sources are only read.
"""

from __future__ import annotations

import fractions
import json
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from videojepa.data.datasets import Entry, read_entries
from videojepa.data.manifest import FORMAT, encode_index, manifest_path
from videojepa.data.readers import BadFileError, PyAVReader, pyav, scan_index
from videojepa.data.sampling import clip_step, grid_frames, grid_range
from videojepa.data.transforms import resize
from videojepa.errors import UserError

CHUNK = 32  # frames read, resized and encoded at a time


@dataclass(frozen=True)
class PrepareSettings:
    short_side: int = 256
    fps: float | None = None  # None: keep every frame
    gop_seconds: float = 1.0
    crf: int = 20
    preset: str = "fast"
    fast_decode: bool = True  # x264 --tune fastdecode: about half the decoding CPU for ~20% more disk


# ----------------------------------------------------------------------------- one video


def output_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the short side at most `short_side`, aspect kept, both even (for yuv420p)."""
    scale = min(1.0, short_side / min(height, width))
    return max(2, round(height * scale / 2) * 2), max(2, round(width * scale / 2) * 2)


def _open_encoder(container, rate: fractions.Fraction, height: int, width: int, settings: PrepareSettings):
    codec = "libx264" if "libx264" in pyav().codecs_available else "mpeg4"
    stream = container.add_stream(codec, rate=rate)
    stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
    gop = max(1, int(round(float(rate) * settings.gop_seconds)))
    if codec == "libx264":
        # One thread and mbtree off: the output is a pure function of the input (resume gives the same bytes).
        x264 = f"mbtree=0:keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0"
        stream.options = {
            "crf": str(settings.crf),
            "preset": settings.preset,
            "threads": "1",
            "x264-params": x264,
            **({"tune": "fastdecode"} if settings.fast_decode else {}),
        }
    else:
        stream.options = {"qscale": "3", "g": str(gop), "bf": "0"}
    return stream


def prepare_video(source: str, output: str, settings: PrepareSettings) -> dict:
    """Re-encode one video; returns its manifest record (paths filled in by the caller). Raises BadFileError."""
    av = pyav()
    with PyAVReader(source) as reader:
        n, src_fps = reader.num_frames, reader.fps
        if settings.fps is None:
            fps, wanted = src_fps, np.arange(n)
            if not fps:
                raise BadFileError(source, "unknown frame rate")
        else:
            step = clip_step(src_fps, 1, settings.fps) if src_fps else None
            if step is None:
                raise BadFileError(source, "unknown frame rate, cannot be resampled to --fps")
            fps, wanted = settings.fps, grid_frames(np.arange(grid_range(0, n, step)[1]), step)
        rate = fractions.Fraction(fps).limit_denominator(1001)
        partial = output + ".partial"
        os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
        try:
            with av.open(partial, "w", format="mp4") as container:
                stream = None
                for first in range(0, len(wanted), CHUNK):
                    frames = reader.read(wanted[first : first + CHUNK])
                    if stream is None:
                        height, width = output_size(frames.shape[1], frames.shape[2], settings.short_side)
                        stream = _open_encoder(container, rate, height, width, settings)
                    frames = resize(frames, (height, width)).contiguous().numpy()
                    for i, image in enumerate(frames):
                        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                        frame.pts, frame.time_base = first + i, 1 / rate
                        for packet in stream.encode(frame):
                            container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
        except BaseException:
            if os.path.exists(partial):
                os.remove(partial)
            raise
    with av.open(partial) as container:
        out_stream = container.streams.video[0]
        index = scan_index(container, out_stream, output)
        time_base = out_stream.time_base
    if index.num_frames != len(wanted):
        os.remove(partial)
        raise RuntimeError(f"{output}: encoded {len(wanted)} frames, the file holds {index.num_frames}")
    os.replace(partial, output)
    return {
        "frames": int(index.num_frames),
        "fps": float(fps),
        "duration": round(index.num_frames / float(fps), 6),
        "height": int(height),
        "width": int(width),
        "bytes": os.path.getsize(output),
        "time_base": [time_base.numerator, time_base.denominator],
        **encode_index(index),
        "source_frames": int(n),
        "source_fps": src_fps,
    }


def _job(args) -> dict:
    key, source, output, settings = args
    av = pyav()
    torch.set_num_threads(1)
    base = {"key": key, "source_bytes": os.path.getsize(source) if os.path.isfile(source) else -1}
    try:
        return {**base, **prepare_video(source, output, settings)}
    except BadFileError as err:
        return {**base, "bad": err.reason}
    except (ValueError, RuntimeError, av.error.FFmpegError) as err:  # one video failing must not stop the rest
        return {**base, "bad": f"cannot be re-encoded ({err})"}


# ----------------------------------------------------------------------------- the dataset


@dataclass
class Plan:
    """What to write: each entry's output path, and where the list (or tree) goes."""

    entries: list[Entry]
    classes: list[str]
    outputs: list[str]  # absolute output path per entry
    list_out: str | None  # the list to write; None for a folder source (the tree is the list)
    manifest: str
    kind: str  # "space", "csv" or "folder"


def _list_kind(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        first = next((line.strip() for line in f if line.strip() and not line.startswith("#")), "")
    return "csv" if "," in first else "space"


def plan(src: str, out: str) -> Plan:
    src, out = os.path.abspath(os.path.expanduser(src)), os.path.abspath(os.path.expanduser(out))
    entries, classes = read_entries(src)
    if os.path.isdir(src):
        root, kind = src, "folder"
    elif len(entries) == 1 and entries[0].path == src:  # a single media file
        root, kind = os.path.dirname(src), "folder"
    else:
        # The common folder of the list and its files, so that `../videos/x.mp4` keeps its shape.
        root = os.path.commonpath([os.path.dirname(src)] + [os.path.dirname(e.path) for e in entries])
        kind = _list_kind(src)
    if out == root:
        raise UserError(f"OUT {out} is the sources' folder: give another folder (originals are never overwritten)")
    outputs = []
    for e in entries:
        rel = os.path.relpath(e.path, root)
        outputs.append(os.path.join(out, rel if e.is_image else os.path.splitext(rel)[0] + ".mp4"))
    sources = {e.path for e in entries}
    seen: dict[str, str] = {}
    for e, o in zip(entries, outputs):
        if o in sources:
            raise UserError(f"{o} would overwrite a source file; give an output folder outside the sources")
        if o in seen and seen[o] != e.path:
            raise UserError(f"{seen[o]} and {e.path} would both be written to {o}; rename one of them")
        seen[o] = e.path
    if kind == "folder":
        return Plan(entries, classes, outputs, None, os.path.join(out, "manifest.json"), kind)
    list_out = os.path.join(out, os.path.relpath(src, root))
    return Plan(entries, classes, outputs, list_out, manifest_path(list_out), kind)


def _convert_range(entry: Entry, record: dict, settings: PrepareSettings) -> tuple[int, int | None]:
    """start_frame / end_frame of an entry in the prepared video's frames."""
    if settings.fps is None or (entry.start_frame == 0 and entry.end_frame is None):
        return entry.start_frame, entry.end_frame
    step = clip_step(record["source_fps"], 1, settings.fps)
    end = record["source_frames"] if entry.end_frame is None else min(entry.end_frame, record["source_frames"])
    g0, g1 = grid_range(entry.start_frame, end, step)
    return g0, None if entry.end_frame is None else max(g1, g0 + 1)


def _write_list(p: Plan, kept: list[tuple[Entry, str, tuple[int, int | None]]]) -> None:
    folder = os.path.dirname(p.list_out)
    os.makedirs(folder, exist_ok=True)
    ranges = any(r != (0, None) for _, _, r in kept)
    lines = ["path,label" + (",start_frame,end_frame" if ranges else "")] if p.kind == "csv" else []
    for entry, output, (start, end) in kept:
        rel = os.path.relpath(output, folder)
        if p.kind == "csv":
            row = [rel, str(entry.label)] + ([str(start), "" if end is None else str(end)] if ranges else [])
            lines.append(",".join(f'"{c}"' if "," in c else c for c in row))
        else:
            lines.append(f"{rel} {entry.label}")
    _write_text(p.list_out, "".join(line + "\n" for line in lines))
    if p.classes:
        _write_text(os.path.join(folder, "classes.txt"), "".join(c + "\n" for c in p.classes))


def _write_text(path: str, text: str) -> None:
    tmp = path + ".partial"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _read_log(path: str) -> tuple[dict | None, dict[str, dict]]:
    """Settings and records of an earlier run's log; a line cut by a kill is ignored."""
    if not os.path.exists(path):
        return None, {}
    settings, records = None, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if "settings" in record:
                settings = record["settings"]
            else:
                records[record["key"]] = record
    return settings, records


def prepare_dataset(
    src: str, out: str, settings: PrepareSettings = PrepareSettings(), workers: int = 1, progress: bool = True
) -> dict:
    """Prepare SRC into OUT (see the module docstring); returns a summary."""
    if settings.short_side < 2 or settings.gop_seconds <= 0 or (settings.fps is not None and settings.fps <= 0):
        raise UserError("--short-side must be at least 2, --gop-seconds and --fps positive")
    p = plan(src, out)
    out = os.path.abspath(os.path.expanduser(out))
    os.makedirs(out, exist_ok=True)
    manifest_folder = os.path.dirname(p.manifest)
    log_name = "." + os.path.basename(p.manifest).replace("manifest.json", "prepare.jsonl")
    log_path = os.path.join(manifest_folder, log_name)
    old_settings, old = _read_log(log_path)
    if old_settings is not None and old_settings != asdict(settings):
        raise UserError(
            f"{out} was prepared with other settings ({old_settings}); give the same settings to continue, "
            f"or another OUT"
        )
    if old_settings is None:
        os.makedirs(manifest_folder, exist_ok=True)
        with open(log_path, "w", encoding="utf-8") as f:
            f.write(json.dumps({"settings": asdict(settings)}) + "\n")

    keys = [os.path.relpath(o, manifest_folder) for o in p.outputs]
    records: dict[str, dict] = {}
    jobs = []
    for entry, output, key in zip(p.entries, p.outputs, keys):
        if entry.is_image:  # images are copied: nothing to re-encode
            if not os.path.exists(output):
                os.makedirs(os.path.dirname(output), exist_ok=True)
                shutil.copyfile(entry.path, output)
            continue
        size = os.path.getsize(entry.path) if os.path.isfile(entry.path) else -1
        done = old.get(key)
        if (
            done
            and done["source_bytes"] == size
            and ("bad" in done or (os.path.isfile(output) and os.path.getsize(output) == done["bytes"]))
        ):
            records[key] = done
        else:
            jobs.append((key, entry.path, output, settings))
    reused = len(records)
    start = time.perf_counter()
    workers = max(1, min(workers, len(jobs))) if jobs else 1
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), disable=not progress or not jobs, desc="prepare", unit="video", dynamic_ncols=True)
    with open(log_path, "a", encoding="utf-8") as log:
        if workers > 1:
            # Not fork: the caller may hold threads (tqdm's monitor, torch), and a forked child can deadlock on a
            # lock one of them held.
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            pool = multiprocessing.get_context(method).Pool(workers)
            results = pool.imap_unordered(_job, jobs)
        else:
            pool, results = None, map(_job, jobs)
        try:
            for record in results:
                records[record["key"]] = record
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.update(1)
                if "bad" in record and progress:
                    bar.write(f"skipping {_source_of(p, record['key'], keys)}: {record['bad']}", file=sys.stderr)
        finally:
            bar.close()
            if pool is not None:
                pool.terminate()
                pool.join()

    videos, bad, kept = {}, [], []
    src = os.path.abspath(os.path.expanduser(src))
    src_root = src if os.path.isdir(src) else os.path.dirname(src)
    for entry, output, key in zip(p.entries, p.outputs, keys):
        source_rel = os.path.relpath(entry.path, src_root)
        if entry.is_image:
            kept.append((entry, output, (0, None)))
            continue
        record = records[key]
        if "bad" in record:
            bad.append({"source": source_rel, "reason": record["bad"]})
            continue
        videos[key] = {k: v for k, v in record.items() if k != "key"} | {"source": source_rel}
        kept.append((entry, output, _convert_range(entry, record, settings)))
    if p.list_out is not None:
        _write_list(p, kept)
    manifest = {
        "format": FORMAT,
        "settings": asdict(settings),
        "source": os.path.abspath(os.path.expanduser(src)),
        "videos": videos,
        "bad": bad,
    }
    _write_text(p.manifest, _manifest_text(manifest))
    out_bytes = sum(r["bytes"] for r in videos.values())
    src_bytes = sum(r["source_bytes"] for r in videos.values())
    return {
        "videos": len(videos),
        "reused": reused,
        "encoded": len(jobs),
        "bad": bad,
        "images": sum(e.is_image for e in p.entries),
        "seconds": time.perf_counter() - start,
        "workers": workers,
        "output_bytes": out_bytes,
        "source_bytes": src_bytes,
        "list": p.list_out or out,
        "manifest": p.manifest,
    }


def _manifest_text(manifest: dict) -> str:
    """JSON with one line per video: readable, and diffable between runs."""
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest.items() if k != "videos")
    videos = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest["videos"].items())
    return "{\n" + head + ',\n "videos": {\n' + videos + "\n }\n}\n"


def _source_of(p: Plan, key: str, keys: list[str]) -> str:
    return p.entries[keys.index(key)].path
