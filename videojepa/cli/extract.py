"""`videojepa extract --checkpoint C --input X --out F`: encoder features of videos and images to a file."""

from __future__ import annotations

import argparse
import json


def _layers(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--layers takes block indices separated by commas (e.g. -1 or 5,11), got {text!r}"
        ) from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "extract",
        help="features of videos/images to .npy or .safetensors (sliding windows, pooling, layers)",
        description="Encode every window of every video (or image) in INPUT and write one row per window to OUT "
        "(.npy or .safetensors), with OUT.index.csv (which file, which window, which frames) and "
        "OUT.json (settings, shape, skipped files). Clip settings default to the ones the encoder "
        "was trained with. An interrupted run resumes where it stopped when run again.",
        epilog="example: videojepa extract --checkpoint runs/vjepa --input videos/ --out feats.npy --pooling frame",
    )
    p.add_argument("--checkpoint", required=True, help="pretraining run directory or encoder file")
    p.add_argument("--input", required=True, help="a video or image file, a folder, or a CSV / list file")
    p.add_argument("--out", required=True, help="output file: NAME.npy or NAME.safetensors")
    p.add_argument("--frames", type=int, help="frames per window (default: the encoder's training clip length, or 16)")
    p.add_argument("--frame-step", type=int, help="take every k-th frame (default: the encoder's, or 4)")
    p.add_argument(
        "--fps",
        type=float,
        help="resample windows to this frame rate instead of --frame-step "
        "(default: the encoder's when it was trained with one)",
    )
    p.add_argument("--stride", type=int, help="frames between window starts (default: the window span, back to back)")
    p.add_argument(
        "--size",
        type=int,
        help="resize the short side to this and centre-crop a square (default: the encoder's training crop, or 224)",
    )
    p.add_argument(
        "--layers", type=_layers, default=[-1], help="encoder blocks, comma separated (default: -1, the last)"
    )
    p.add_argument(
        "--pooling",
        choices=["none", "mean", "frame"],
        default="mean",
        help="none: every token; mean: one vector per window; frame: one per time step (default: mean)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="windows per encoder forward (default: 8)")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="encoder forward precision (default: auto = bf16 on CUDA; on a CPU bf16 only where a matmul probe "
        "measured it faster than fp32, cached per machine)",
    )
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--workers", type=int, default=2, help="decoding worker processes (default: 2; 0 = main process)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output or unfinished run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from videojepa.data.config import IMAGENET_MEAN, IMAGENET_STD
    from videojepa.encoder_io import load_encoder, resolve_encoder_path
    from videojepa.errors import UserError
    from videojepa.eval.extract import extract_features
    from videojepa.eval.features import prepare_encoder
    from videojepa.utils.device import resolve_device
    from videojepa.utils.precision import resolve_precision

    if args.batch_size < 1 or args.workers < 0:
        raise UserError("--batch-size must be at least 1 and --workers at least 0")
    device = resolve_device(args.device or "auto", "--device")
    args.precision = resolve_precision(args.precision, device)  # recorded resolved in the output's settings
    path = resolve_encoder_path(args.checkpoint)
    encoder = prepare_encoder(load_encoder(path, device=device), args.precision)
    stat = path.stat()
    clip = encoder.card.clip
    summary = extract_features(
        encoder,
        args.input,
        args.out,
        frames=args.frames or clip.frames or 16,
        frame_step=args.frame_step or clip.frame_step or 4,
        fps=args.fps if args.fps or args.frame_step else clip.fps,
        stride=args.stride,
        size=args.size or clip.crop or 224,
        layers=args.layers,
        pooling=args.pooling,
        mean=list(clip.mean or IMAGENET_MEAN),
        std=list(clip.std or IMAGENET_STD),
        batch_size=args.batch_size,
        precision=args.precision,
        workers=args.workers,
        progress=not args.no_progress,
        force=args.force,
        encoder_id={"file": str(path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns},
    )
    print(
        json.dumps(
            {k: summary[k] for k in ("output", "index", "shape", "videos")} | {"skipped": len(summary["skipped"])}
        )
    )
    return 0
