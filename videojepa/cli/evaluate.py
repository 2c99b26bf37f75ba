"""`videojepa evaluate PATH --data LIST`: top-1 / top-5 of a classifier as it is, with its own protocol."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a classifier (a converted released probe or classifier, or a fine-tuned one) on labelled videos",
        description="Run the classifier at PATH on every video of a labelled list or folder (the formats `probe` "
        "and `finetune` read) and report top-1 / top-5, with nothing trained. PATH: a `videojepa convert` "
        "output of a released classifier (Hugging Face VJEPA2ForVideoClassification or "
        "VideoMAEForVideoClassification, an official V-JEPA 2 probe), a probe file, or a `videojepa finetune` "
        "RUN/best folder. Clips are made as the classifier's protocol says (frames, frame step, crop, "
        "normalisation, clips x views and how views are averaged); --frames/--frame-step/--crop/--clips/--views "
        "change it. Class names in the list are matched to the classifier's; integer labels are its class "
        "indices. Writes results.json and results.md into --out.",
        epilog="example: videojepa evaluate models/vjepa2-vitl-ssv2 --data ssv2_val.csv --out runs/eval-ssv2",
    )
    p.add_argument("path", help="classifier folder or probe file")
    p.add_argument("--data", required=True, help="labelled CSV / list file or class-per-folder tree")
    p.add_argument("--out", default="runs/evaluate", help="folder for results.json and results.md")
    p.add_argument("--batch-size", type=int, default=4, help="videos per forward (default 4)")
    p.add_argument("--frames", type=int, help="frames per clip (default: the classifier's)")
    p.add_argument("--frame-step", type=int, help="take every k-th frame (default: the classifier's)")
    p.add_argument("--crop", type=int, help="crop size (default: the classifier's)")
    p.add_argument("--clips", type=int, help="temporal segments per video (default: the classifier's)")
    p.add_argument("--views", type=int, help="spatial views per clip (default: the classifier's)")
    p.add_argument("--workers", type=int, default=2, help="decoding worker processes (default 2)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--device", default="auto", help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from videojepa.classifiers import load_classifier
    from videojepa.errors import UserError
    from videojepa.eval.evaluate import evaluate_classifier, markdown_table, write_evaluation
    from videojepa.utils.device import resolve_device

    given = {
        "frames_per_clip": args.frames,
        "frame_step": args.frame_step,
        "crop_size": args.crop,
        "num_clips": args.clips,
        "num_views": args.views,
    }
    flags = dict(zip(given, ("--frames", "--frame-step", "--crop", "--clips", "--views")))
    bad = [flags[k] for k, v in given.items() if v is not None and v < 1]
    if bad or args.batch_size < 1 or args.workers < 0:
        raise UserError(f"{', '.join(bad) or '--batch-size / --workers'}: must be at least 1 (--workers: 0)")
    overrides = {k: v for k, v in given.items() if v is not None}
    overrides["num_workers"] = args.workers
    if args.frame_step is not None:
        overrides["fps"] = None
    device = resolve_device(args.device, "--device")
    model = load_classifier(args.path)
    results = evaluate_classifier(
        model, args.data, args.batch_size, overrides, device, args.precision, progress=not args.no_progress
    )
    results = {"classifier": str(args.path), "source": model.source, **results}
    write_evaluation(args.out, results)
    print(markdown_table(results), end="")
    print(f"wrote {args.out}/results.json and results.md")
    return 0
