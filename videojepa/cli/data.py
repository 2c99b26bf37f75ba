"""`videojepa data synth|check`: write the synthetic benchmark data; check a dataset's files."""
from __future__ import annotations

import argparse
import os

from videojepa.errors import UserError


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def run_synth(args) -> int:
    from videojepa.data.synth import SynthSpec, write_dataset

    spec = SynthSpec(clutter=args.clutter)
    info = write_dataset(args.out, num_videos=args.num_videos, frames=args.frames, size=args.size, seed=args.seed,
                         workers=args.workers, val_fraction=args.val_fraction, motions=_names(args.motions),
                         appearances=_names(args.appearances), spec=spec, force=args.force)
    print(f"wrote {info['num_videos']} videos ({info['num_train']} train, {info['num_val']} val) of "
          f"{args.frames}x{args.size}x{args.size} to {args.out} in {info['seconds']:.1f} s "
          f"with {info['workers']} workers")
    for task in ("motion", "appearance"):
        classes = info[f"{task}_classes"]
        print(f"  {task:<10} {len(classes)} classes (chance {1 / len(classes):.1%}): {', '.join(classes)}")
        print(f"             {os.path.join(args.out, task, 'train.csv')}, {os.path.join(args.out, task, 'val.csv')}")
    return 0


def run_check(args) -> int:
    from videojepa.data.check import check_dataset, format_report

    if args.frames_per_clip < 1 or args.frame_step < 1 or args.workers < 1 or (args.fps is not None and args.fps <= 0):
        raise UserError("--frames-per-clip, --frame-step, --workers and --fps must be positive")
    report = check_dataset(args.path, frames_per_clip=args.frames_per_clip, frame_step=args.frame_step, fps=args.fps,
                           workers=args.workers)
    print(format_report(report, as_json=args.json))
    return 1 if report.bad else 0


def register(subparsers) -> None:
    from videojepa.data.synth import APPEARANCES, DEFAULT_MOTIONS, MOTIONS

    parser = subparsers.add_parser("data", help="synthesise a dataset or check one",
                                   description="Synthetic data and dataset checks.")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    synth = sub.add_parser(
        "synth", help="write a synthetic labelled video dataset (mp4 + CSV)",
        description="Write moving-object videos labelled two ways: 'motion' (needs temporal modelling) and "
                    "'appearance' (shape/texture). Layout: OUT/videos/*.mp4, OUT/{motion,appearance}/{train,val}.csv "
                    "(V-JEPA 'path label' format) and classes.txt, OUT/scenes.csv, OUT/synth.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--num-videos", type=int, default=480, help="number of videos")
    synth.add_argument("--frames", type=int, default=16, help="frames per video")
    synth.add_argument("--size", type=int, default=64, help="frame height and width (even)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; the output is a function of it")
    synth.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    synth.add_argument("--val-fraction", type=float, default=0.25, help="fraction of videos in val.csv")
    synth.add_argument("--motions", default=",".join(DEFAULT_MOTIONS),
                       help=f"the motion classes (replaces the default list; labels follow this order), comma "
                            f"separated, from: {', '.join(MOTIONS)}")
    synth.add_argument("--appearances", default=",".join(APPEARANCES), help="appearance classes, comma separated")
    synth.add_argument("--clutter", type=float, default=0.1, help="strength of the background texture")
    synth.add_argument("--force", action="store_true", help="replace videos already in OUT")
    synth.set_defaults(func=run_synth)

    check = sub.add_parser(
        "check", help="decode every file of a dataset and report bad ones",
        description="Decode every frame of every file listed by a CSV or found in a folder; list unreadable, "
                    "truncated and short files with reasons, and print decode throughput. Exit code 1 if any "
                    "file is bad.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    check.add_argument("path", metavar="CSV_OR_DIR", help="a CSV/list file or a folder")
    check.add_argument("--frames-per-clip", type=int, default=16, help="clip length for the clip-decode timing")
    check.add_argument("--frame-step", type=int, default=4, help="frame step of that clip")
    check.add_argument("--fps", type=float, default=None, help="sample the clip at this frame rate instead")
    check.add_argument("--workers", type=int, default=1, help="processes decoding in parallel")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=run_check)
