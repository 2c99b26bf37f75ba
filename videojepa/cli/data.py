"""`videojepa data synth|check|prepare`: write the synthetic benchmark data; check a dataset's files; prepare a
dataset for cheap training reads."""

from __future__ import annotations

import argparse
import json
import os

from videojepa.errors import UserError


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def run_synth(args) -> int:
    from videojepa.data.synth import SynthSpec, write_dataset

    spec = SynthSpec(clutter=args.clutter)
    count = args.num_videos // 4 if args.localization_videos is None else args.localization_videos
    if count < 0 or args.localization_objects < 2:
        raise UserError("--localization-videos must be >= 0 and --localization-objects >= 2")
    info = write_dataset(
        args.out,
        num_videos=args.num_videos,
        frames=args.frames,
        size=args.size,
        seed=args.seed,
        workers=args.workers,
        val_fraction=args.val_fraction,
        motions=_names(args.motions),
        appearances=_names(args.appearances),
        spec=spec,
        force=args.force,
    )
    print(
        f"wrote {info['num_videos']} videos ({info['num_train']} train, {info['num_val']} val) of "
        f"{args.frames}x{args.size}x{args.size} to {args.out} in {info['seconds']:.1f} s "
        f"with {info['workers']} workers"
    )
    for task in ("motion", "appearance"):
        classes = info[f"{task}_classes"]
        print(f"  {task:<10} {len(classes)} classes (chance {1 / len(classes):.1%}): {', '.join(classes)}")
        print(f"             {os.path.join(args.out, task, 'train.csv')}, {os.path.join(args.out, task, 'val.csv')}")
    if count:
        run_synth_localization(args, max(2, count), spec)
    return 0


def run_synth_localization(args, count: int, spec) -> None:
    from videojepa.data.synth_localization import write_localization

    info = write_localization(
        args.out,
        num_videos=count,
        frames=args.frames,
        size=args.size,
        seed=args.seed,
        workers=args.workers,
        val_fraction=args.val_fraction,
        motions=_names(args.motions),
        max_objects=args.localization_objects,
        spec=spec,
        force=args.force,
    )
    boxes = info["boxes"]
    print(
        f"  localization {info['num_train']} train / {info['num_val']} val videos, {boxes['train']} / {boxes['val']} "
        f"boxes of {len(info['classes'])} motion classes, {info['val_proposals']} val proposals "
        f"({info['seconds']:.1f} s): {os.path.join(args.out, 'localization')}"
    )


def run_check(args) -> int:
    from videojepa.data.check import check_dataset, format_report

    if args.frames_per_clip < 1 or args.frame_step < 1 or args.workers < 1 or (args.fps is not None and args.fps <= 0):
        raise UserError("--frames-per-clip, --frame-step, --workers and --fps must be positive")
    any_bad = False
    for n, path in enumerate(args.path):  # one report per source (a mixture's sources are checked one by one)
        report = check_dataset(
            path, frames_per_clip=args.frames_per_clip, frame_step=args.frame_step, fps=args.fps, workers=args.workers
        )
        if len(args.path) > 1 and not args.json:
            print(("\n" if n else "") + f"== {path}")
        print(format_report(report, as_json=args.json))
        any_bad = any_bad or bool(report.bad)
    return 1 if any_bad else 0


def run_bench(args) -> int:
    from videojepa.data.bench import bench, format_report
    from videojepa.data.config import DataConfig

    try:
        cfg = DataConfig(
            frames_per_clip=args.frames_per_clip,
            frame_step=args.frame_step,
            fps=args.fps,
            crop_size=args.crop_size,
            decode_threads=args.decode_threads,
            num_workers=0,
        )
    except ValueError as err:
        raise UserError(f"invalid sampling option: {err.errors()[0]['loc'][0]} {err.errors()[0]['msg']}") from None
    target, target_from, run_stats = args.target, None, None
    if args.run is not None:
        from videojepa.train.logger import step_rate

        target, run_stats = step_rate(args.run)
        target_from = f"run {args.run}"
    report = bench(
        args.path,
        cfg,
        clips=args.clips,
        target=target,
        weights=args.weights,
        target_from=target_from,
        run_stats=run_stats,
    )
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_report(report))
    return 0


def _size(num_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if num_bytes < 1024 or unit == "GiB":
            return f"{num_bytes:.1f} {unit}" if unit != "B" else f"{int(num_bytes)} B"
        num_bytes /= 1024
    return ""


def run_prepare(args) -> int:
    from videojepa.data.prepare import PrepareSettings, prepare_dataset

    if args.workers < 1 or args.crf < 0:
        raise UserError("--workers must be at least 1 and --crf non-negative")
    settings = PrepareSettings(
        short_side=args.short_side,
        fps=args.fps,
        gop_seconds=args.gop_seconds,
        crf=args.crf,
        preset=args.preset,
        fast_decode=args.fast_decode,
    )
    info = prepare_dataset(args.src, args.out, settings, workers=args.workers, progress=not args.quiet)
    for bad in info["bad"]:
        print(f"BAD   {bad['source']}: {bad['reason']}")
    ratio = info["output_bytes"] / max(info["source_bytes"], 1)
    print(
        f"prepared {info['videos']} videos ({info['encoded']} encoded now, {info['reused']} from an earlier run, "
        f"{len(info['bad'])} bad and skipped) in {info['seconds']:.1f} s with {info['workers']} worker(s)"
    )
    print(
        f"disk: {_size(info['output_bytes'])} for the prepared videos ({ratio:.1%} of the "
        f"{_size(info['source_bytes'])} of their originals)"
    )
    print(f"list: {info['list']}\nmanifest: {info['manifest']}")
    return 0


def register(subparsers) -> None:
    from videojepa.data.synth import APPEARANCES, DEFAULT_MOTIONS, MOTIONS

    parser = subparsers.add_parser(
        "data",
        help="synthesise, check, prepare or benchmark a dataset",
        description="Synthetic data and dataset checks.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    synth = sub.add_parser(
        "synth",
        help="write a synthetic labelled video dataset (mp4 + CSV)",
        description="Write moving-object videos labelled two ways: 'motion' (needs temporal modelling) and "
        "'appearance' (shape/texture). Layout: OUT/videos/*.mp4, OUT/{motion,appearance}/{train,val}.csv "
        "(V-JEPA 'path label' format) and classes.txt, OUT/scenes.csv, OUT/synth.json. Plus an action-localisation "
        "task in AVA's layout (2-3 objects per video, each box labelled with its own motion class): "
        "OUT/localization/{train,val}.csv, labelmap.pbtxt, val_proposals.csv, tracks.csv, videos/ "
        "(`videojepa localize demo/localize`).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--num-videos", type=int, default=480, help="number of videos")
    synth.add_argument("--frames", type=int, default=16, help="frames per video")
    synth.add_argument("--size", type=int, default=64, help="frame height and width (even)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; the output is a function of it")
    synth.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    synth.add_argument("--val-fraction", type=float, default=0.25, help="fraction of videos in val.csv")
    synth.add_argument(
        "--motions",
        default=",".join(DEFAULT_MOTIONS),
        help=f"the motion classes (replaces the default list; labels follow this order), comma "
        f"separated, from: {', '.join(MOTIONS)}",
    )
    synth.add_argument("--appearances", default=",".join(APPEARANCES), help="appearance classes, comma separated")
    synth.add_argument("--clutter", type=float, default=0.1, help="strength of the background texture")
    synth.add_argument(
        "--localization-videos",
        type=int,
        default=None,
        help="videos of the action-localisation task in AVA's layout under OUT/localization "
        "(default: a quarter of --num-videos; 0: none)",
    )
    synth.add_argument(
        "--localization-objects", type=int, default=3, help="at most this many moving objects per localisation video"
    )
    synth.add_argument("--force", action="store_true", help="replace videos already in OUT")
    synth.set_defaults(func=run_synth)

    check = sub.add_parser(
        "check",
        help="decode every file of a dataset and report bad ones",
        description="Decode every frame of every file listed by a CSV or found in a folder; list unreadable, "
        "truncated and short files with reasons, and print decode throughput. Exit code 1 if any "
        "file is bad.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    check.add_argument("path", metavar="CSV_OR_DIR", nargs="+", help="CSV/list files or folders, checked one by one")
    check.add_argument("--frames-per-clip", type=int, default=16, help="clip length for the clip-decode timing")
    check.add_argument("--frame-step", type=int, default=4, help="frame step of that clip")
    check.add_argument("--fps", type=float, default=None, help="sample the clip at this frame rate instead")
    check.add_argument("--workers", type=int, default=1, help="processes decoding in parallel")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=run_check)

    prepare = sub.add_parser(
        "prepare",
        help="re-encode a dataset once at the sampled frame rate and needed size, with an index manifest",
        description="Re-encode every video of SRC into OUT (H.264, short side at most --short-side, resampled to "
        "--fps, a keyframe every --gop-seconds) and write the list in the source's form plus a manifest "
        "of frame counts, frame rates and frame tables, so that training decodes and scans less. Train "
        "with data.fps equal to --fps on the list printed at the end. Parallel and resumable: run it "
        "again after an interruption. Unreadable sources are reported and skipped; sources are only read.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    prepare.add_argument("src", metavar="SRC", help="a CSV/list file, a folder or a video file")
    prepare.add_argument("out", metavar="OUT", help="output folder (created; sources are never written)")
    prepare.add_argument(
        "--short-side", type=int, default=256, help="short side in pixels (256 for 224 crops); never upscaled"
    )
    prepare.add_argument(
        "--fps",
        type=float,
        default=None,
        help="frame rate to keep, = the training data.fps (default: keep every frame)",
    )
    prepare.add_argument("--gop-seconds", type=float, default=1.0, help="seconds between keyframes")
    prepare.add_argument("--crf", type=int, default=20, help="x264 quality (lower = better, larger)")
    prepare.add_argument("--preset", default="fast", help="x264 speed preset")
    prepare.add_argument(
        "--no-fast-decode",
        dest="fast_decode",
        action="store_false",
        help="without x264's fastdecode tuning: ~20%% smaller files, about twice the decoding CPU",
    )
    prepare.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(func=run_prepare)

    bench = sub.add_parser(
        "bench",
        help="CPU-ms per training clip and the workers / cores needed for a target clips/s",
        description="Make training clips the way a DataLoader worker does and measure the CPU time per clip "
        "(decode, augment, total; median), the clips/s of one worker, and the workers and cores "
        "needed for a target rate: --target, or the rate a run's training step reaches (--run: its "
        "logged clips/s over 1 - data-wait fraction). One row per source; with several, also their "
        "--weights mixture.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    bench.add_argument("path", metavar="LIST", nargs="+", help="CSV/list files or folders (e.g. a prepared copy)")
    bench.add_argument("--frames-per-clip", type=int, default=16, help="frames per clip")
    bench.add_argument("--frame-step", type=int, default=4, help="frame step (ignored with --fps)")
    bench.add_argument("--fps", type=float, default=None, help="sample clips at this frame rate (data.fps)")
    bench.add_argument("--crop-size", type=int, default=224, help="crop side in pixels")
    bench.add_argument("--decode-threads", type=int, default=1, help="FFmpeg threads per decoder")
    bench.add_argument("--clips", type=int, default=32, help="clips timed per source")
    bench.add_argument("--target", type=float, default=200.0, help="clips/s to feed (per GPU)")
    bench.add_argument("--run", default=None, help="a pretrain run directory: its training clips/s is the target")
    bench.add_argument("--weights", type=float, nargs="+", default=None, help="sampling weight per source")
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    bench.set_defaults(func=run_bench)
