"""Data pipeline throughput: clips/s of raw decoding vs the full training pipeline, by workers and size.

    python benchmarks/bench_data.py [--out results.json] [--workers 1 2] [--sizes 64 224] [--clips 128]

For each clip size S (16 frames × S × S) it writes source videos once (S=64: 64×64 sources; S=224:
256×340 sources, Kinetics-like; 10 s at 30 fps, H.264 with a keyframe every second, moving textured
content), then measures, through a DataLoader with 1 and 2 worker processes:
  raw       seek + decode of one 16-frame clip (frame_step 4) per video: videojepa's PyAV reader, uint8;
  pipeline  the training dataset item: decode + random clip sampling + random resized crop + flip +
            normalise (VideoDataset, train=True), float32 C×T×S×S;
  naive     the same-run reference: decode from the first frame up to the clip's last frame and convert
            every frame to RGB (what a reader without seeking does).
Each measurement is repeated (`--repeats`, interleaved) and the median wall-clock clips/s reported with
its range.

`--prepared` adds the comparison of original and prepared sources (`videojepa data prepare`, at 7.5 fps =
frame_step 4 of 30 fps, short side 256), for 256×340 30 fps sources of 10 s and 120 s and a 1280×720 30 fps
source of 10 s, 16×224×224 clips: in this process, interleaved `--repeats` times, the CPU ms per clip of
  today     the original files, float items normalised in the worker (the pipeline before this change);
  original  the original files, uint8 items (flip and normalisation on the training device);
  prepared  the prepared copy read through its manifest, uint8 items, clips at data.fps = 7.5;
split into decode and augment for the last two (`videojepa.data.bench.measure_source`), with the speedup of
prepared over today and the workers + 1 cores per GPU for 200 clips/s. `--only-prepared` skips the rest.
Wall-clock rates depend on what else runs on the machine, so every row also has the median
CPU time a worker process spent per clip (all its threads; barely affected by other processes) and the
CPU-time speedup over the naive reference. Prints JSON (machine, load average, settings, rows);
`--out FILE` also writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import av
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from videojepa.data import DataConfig, build_dataset, open_video  # noqa: E402
from videojepa.data.bench import measure_source  # noqa: E402
from videojepa.data.prepare import PrepareSettings, prepare_dataset  # noqa: E402
from videojepa.data.sampling import clip_offsets, sample_clips  # noqa: E402
from videojepa.data.synth import write_mp4  # noqa: E402

FRAMES, STEP, FPS, SECONDS = 16, 4, 30, 10
SOURCES = {64: (64, 64), 224: (256, 340)}  # clip size -> source (height, width)


def moving_texture(height: int, width: int, frames: int, seed: int) -> np.ndarray:
    """uint8 F×H×W×3: a smooth random texture panning diagonally, with a few moving discs and noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 16 + 4, width // 16 + 4, 3)).astype(np.float32)
    texture = (
        torch.nn.functional.interpolate(
            torch.from_numpy(coarse).permute(2, 0, 1)[None], scale_factor=16, mode="bicubic"
        )[0]
        .permute(1, 2, 0)
        .clamp(0, 255)
        .numpy()
    )
    y, x = np.mgrid[0:height, 0:width]
    discs = rng.uniform(0, 1, (4, 4))
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        dy, dx = (t // 3) % 48, (t // 2) % 48
        frame = texture[dy : dy + height, dx : dx + width].copy()
        for cy, cx, vy, vx in discs:
            py, px = (cy * height + 40 * vy * t / FPS) % height, (cx * width + 60 * vx * t / FPS) % width
            frame[(y - py) ** 2 + (x - px) ** 2 < (height / 10) ** 2] = 255 * vy
        frame += rng.normal(0, 3, frame.shape).astype(np.float32)
        out[t] = np.clip(frame, 0, 255)
    return out


def write_sources(folder: str, size: int, count: int) -> str:
    height, width = SOURCES[size]
    os.makedirs(folder, exist_ok=True)
    lines = []
    for i in range(count):
        path = os.path.join(folder, f"{i:03d}.mp4")
        if not os.path.exists(path):
            write_mp4(path, moving_texture(height, width, FPS * SECONDS, seed=i), FPS, gop=FPS)
        lines.append(f"{i:03d}.mp4 0\n")
    with open(os.path.join(folder, "list.csv"), "w") as f:
        f.writelines(lines)
    return os.path.join(folder, "list.csv")


# --prepared: source kind -> (height, width, seconds)
PREPARED_SOURCES = {"256x340_10s": (256, 340, 10), "256x340_120s": (256, 340, 120), "720p_10s": (720, 1280, 10)}
PREPARED_FPS, TARGET = 7.5, 200.0


def write_long_source(path: str, height: int, width: int, seconds: int, seed: int) -> None:
    """An H.264 source like write_mp4's (crf 18, keyframe every second, x264's default B-frames), written 10 s at
    a time so that long and large sources fit in memory."""
    import fractions

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(path + ".partial", "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fractions.Fraction(FPS))
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        stream.options = {
            "crf": "18",
            "preset": "veryfast",
            "threads": "1",
            "g": str(FPS),
            "x264-params": f"mbtree=0:keyint={FPS}:min-keyint={FPS}:scenecut=0",
        }
        for part in range(0, seconds, 10):
            for frame in moving_texture(height, width, FPS * min(10, seconds - part), seed=seed * 1000 + part):
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(path + ".partial", path)


def item_cpu_ms(dataset, clips: int, seed: int) -> list[float]:
    """CPU ms of each of `clips` training items (after one warm-up item), one torch thread."""
    out = []
    for i in range(clips + 1):
        start = time.process_time()
        dataset[(i % len(dataset), seed, i // len(dataset))]
        if i:
            out.append(1000 * (time.process_time() - start))
    return out


def prepared_comparison(root: str, kinds: list[str], videos: int, clips: int, repeats: int) -> list[dict]:
    rows = []
    for kind in kinds:
        height, width, seconds = PREPARED_SOURCES[kind]
        folder = os.path.join(root, f"orig_{kind}")
        os.makedirs(folder, exist_ok=True)
        for i in range(videos):
            if not os.path.exists(os.path.join(folder, f"{i:03d}.mp4")):
                write_long_source(os.path.join(folder, f"{i:03d}.mp4"), height, width, seconds, seed=i)
        with open(os.path.join(folder, "list.csv"), "w") as f:
            f.writelines(f"{i:03d}.mp4 0\n" for i in range(videos))
        start = time.perf_counter()
        info = prepare_dataset(
            os.path.join(folder, "list.csv"),
            os.path.join(root, f"prep_{kind}"),
            PrepareSettings(short_side=256, fps=PREPARED_FPS),
            workers=1,
            progress=False,
        )
        prepare_s = time.perf_counter() - start
        base = dict(frames_per_clip=FRAMES, crop_size=224, num_workers=0)
        original_cfg, prepared_cfg = DataConfig(frame_step=STEP, **base), DataConfig(fps=PREPARED_FPS, **base)
        today = build_dataset(os.path.join(folder, "list.csv"), original_cfg, train=True)
        ms = {"today": [], "original": [], "prepared": []}
        split = {"original": [], "prepared": []}
        for r in range(repeats):  # interleaved, so that load from other processes hits all alike
            ms["today"] += item_cpu_ms(today, clips, seed=r)
            for name, listing, cfg in (
                ("original", os.path.join(folder, "list.csv"), original_cfg),
                ("prepared", info["list"], prepared_cfg),
            ):
                cost = measure_source(listing, cfg, clips, seed=r)
                split[name].append(cost)
                ms[name].append(cost.total_ms)
        today_ms = float(np.median(ms["today"]))
        row = {
            "source": kind,
            "source_size": f"{width}x{height}",
            "source_fps": FPS,
            "seconds": seconds,
            "videos": videos,
            "clip": f"{FRAMES}x224x224",
            "today_cpu_ms": round(today_ms, 2),
            "prepare_seconds_per_video": round(prepare_s / videos, 2),
            "disk_original_mb": round(info["source_bytes"] / 1e6, 2),
            "disk_prepared_mb": round(info["output_bytes"] / 1e6, 2),
        }
        for name in ("original", "prepared"):
            costs = split[name]
            total = float(np.median(ms[name]))
            row.update(
                {
                    f"{name}_cpu_ms": round(total, 2),
                    f"{name}_decode_cpu_ms": round(float(np.median([c.decode_ms for c in costs])), 2),
                    f"{name}_augment_cpu_ms": round(float(np.median([c.augment_ms for c in costs])), 2),
                    f"{name}_cores_at_200": int(np.ceil(TARGET * total / 1000)) + 1,
                }
            )
        row["today_cores_at_200"] = int(np.ceil(TARGET * today_ms / 1000)) + 1
        row["speedup_prepared_vs_today"] = round(today_ms / row["prepared_cpu_ms"], 2)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


class RawClips(Dataset):
    """Decode only: one random 16-frame clip per item, uint8 T×H×W×3; `naive` decodes from the start."""

    def __init__(self, paths: list[str], naive: bool = False):
        self.paths, self.naive = paths, naive

    def __len__(self) -> int:
        return 1 << 30

    def __getitem__(self, i: int) -> torch.Tensor:
        path = self.paths[i % len(self.paths)]
        rng = np.random.default_rng(i)
        if not self.naive:
            with open_video(path) as reader:
                return reader.read(sample_clips(reader.num_frames, FRAMES, STEP, 1, rng)[0])
        with av.open(path) as container:
            n = container.streams.video[0].frames
            start = int(rng.integers(0, n - int(clip_offsets(FRAMES, STEP)[-1])))
            wanted = set((start + clip_offsets(FRAMES, STEP)).tolist())
            got = []
            for index, frame in enumerate(container.decode(video=0)):
                image = frame.to_ndarray(format="rgb24")
                if index in wanted:
                    got.append(image)
                if index >= max(wanted):
                    break
            return torch.from_numpy(np.stack(got))


class Items(Dataset):
    """Endless view of a VideoDataset (random keys), for a loader that never runs out."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return 1 << 30

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.dataset[(i % len(self.dataset), 0, i // len(self.dataset))]["video"]


class Timed(Dataset):
    """Returns (item, CPU seconds the worker spent making it): a load-independent cost per clip."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        start = time.process_time()
        item = self.dataset[i]
        return item, time.process_time() - start


def measure(dataset: Dataset, workers: int, clips: int) -> tuple[float, list[float]]:
    """Wall-clock clips/s through a DataLoader with `workers` processes, and each clip's worker CPU ms."""
    loader = DataLoader(
        Timed(dataset),
        batch_size=None,
        num_workers=workers,
        persistent_workers=True,
        prefetch_factor=4,
        collate_fn=lambda x: x,
    )
    it = iter(loader)
    for _ in range(2 * workers):  # warm-up: workers started, first files opened
        next(it)
    start = time.perf_counter()
    cpu_ms = [next(it)[1] * 1000 for _ in range(clips)]
    seconds = time.perf_counter() - start
    del it, loader
    return clips / seconds, cpu_ms


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "av": av.__version__,
        "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224], choices=sorted(SOURCES))
    parser.add_argument("--clips", type=int, default=128, help="clips timed per measurement (halved at 224)")
    parser.add_argument("--videos", type=int, default=8, help="source videos per size")
    parser.add_argument("--repeats", type=int, default=3, help="timings per measurement; the median is reported")
    parser.add_argument("--data-dir", help="keep the source videos here (default: a temporary folder)")
    parser.add_argument(
        "--prepared",
        nargs="*",
        default=None,
        choices=sorted(PREPARED_SOURCES),
        help="also compare original and prepared sources (all kinds when given without values)",
    )
    parser.add_argument("--prepared-videos", type=int, default=2, help="videos per source kind for --prepared")
    parser.add_argument("--prepared-clips", type=int, default=12, help="clips timed per repeat for --prepared")
    parser.add_argument("--only-prepared", action="store_true", help="skip the decode/pipeline/naive rows")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    load = [round(x, 2) for x in os.getloadavg()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_dir or tmp
        for size in [] if args.only_prepared else args.sizes:
            listing = write_sources(os.path.join(root, f"src{size}"), size, args.videos)
            cfg = DataConfig(frames_per_clip=FRAMES, frame_step=STEP, crop_size=size, num_workers=0)
            pipeline = Items(build_dataset(listing, cfg, train=True))
            paths = [e.path for e in pipeline.dataset.entries]
            clips = args.clips if size < 224 else max(8, args.clips // 2)
            for workers in args.workers:
                # Repeats interleave the modes, so that load from other processes hits them alike.
                rates = {"naive": [], "raw": [], "pipeline": []}
                cpu = {"naive": [], "raw": [], "pipeline": []}
                for _ in range(args.repeats):
                    for mode, dataset, count in (
                        ("naive", RawClips(paths, naive=True), max(4, clips // 4)),
                        ("raw", RawClips(paths), clips),
                        ("pipeline", pipeline, clips),
                    ):
                        rate, ms = measure(dataset, workers, count)
                        rates[mode].append(rate)
                        cpu[mode] += ms
                naive_rate, naive_ms = float(np.median(rates["naive"])), float(np.median(cpu["naive"]))
                for mode in ("raw", "pipeline"):
                    rate, ms = float(np.median(rates[mode])), float(np.median(cpu[mode]))
                    rows.append(
                        {
                            "size": size,
                            "source": "x".join(map(str, SOURCES[size])),
                            "mode": mode,
                            "workers": workers,
                            "clips_per_s": round(rate, 1),
                            "clips_per_s_range": [round(min(rates[mode]), 1), round(max(rates[mode]), 1)],
                            "cpu_ms_per_clip": round(ms, 2),
                            "naive_clips_per_s": round(naive_rate, 1),
                            "naive_cpu_ms_per_clip": round(naive_ms, 2),
                            "speedup_vs_naive_cpu": round(naive_ms / ms, 1),
                        }
                    )
                    print(json.dumps(rows[-1]), file=sys.stderr)
        prepared_rows = []
        if args.prepared is not None:
            prepared_rows = prepared_comparison(
                root, args.prepared or sorted(PREPARED_SOURCES), args.prepared_videos, args.prepared_clips, args.repeats
            )
    result = {
        "benchmark": "data",
        "machine": {**machine(), "load_average_at_start": load},
        "settings": {
            "frames_per_clip": FRAMES,
            "frame_step": STEP,
            "source_fps": FPS,
            "source_seconds": SECONDS,
            "gop": FPS,
            "videos": args.videos,
            "clips_timed": args.clips,
            "repeats": args.repeats,
            "decode_threads": 1,
            "torch_threads": 1,
        },
        "command": "python benchmarks/bench_data.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "results": rows,
    }
    if args.prepared is not None:
        result["prepared"] = {
            "fps": PREPARED_FPS,
            "short_side": 256,
            "target_clips_per_s": TARGET,
            "cores": "workers + 1 for the training process",
            "results": prepared_rows,
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return result


if __name__ == "__main__":
    main()
