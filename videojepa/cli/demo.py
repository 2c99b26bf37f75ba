"""`videojepa demo`: synthetic videos -> SALT, V-JEPA, VideoMAE at matched FLOPs -> probes -> table and plots."""

from __future__ import annotations

import argparse
import dataclasses


def register(subparsers) -> None:
    from videojepa.demo import SIZES

    full, quick = SIZES["full"], SIZES["quick"]
    p = subparsers.add_parser(
        "demo",
        help="synthesise videos, pretrain SALT, V-JEPA and VideoMAE at matched FLOPs, probe all, report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "The whole method comparison on one machine (CPU is enough):\n"
            "  1. render synthetic videos labelled by MOTION and by APPEARANCE into OUT/data;\n"
            "  2. fix one training budget in FLOPs (--budget-steps V-JEPA steps) and give every method the\n"
            "     same: SALT's teacher --teacher-share of it and its student the rest, V-JEPA and VideoMAE\n"
            "     as many steps as fit;\n"
            "  3. pretrain each (ordinary run directories OUT/runs/{salt_teacher,salt_student,vjepa,videomae}\n"
            "     from the demo/* presets), keeping its encoder at --curve-points of its steps;\n"
            "  4. probe each final encoder and a random-init one with three protocols: the attentive probe\n"
            "     on motion, and a linear probe and kNN on per-time-step features on both tasks\n"
            "     (OUT/probes); the kept encoders with the last two: the points of the accuracy-vs-FLOPs curves;\n"
            "  5. print the tables (OUT/results.md; everything in OUT/results.json) and draw\n"
            "     OUT/loss_curves.png, OUT/accuracy_vs_flops.png and OUT/masks.png (needs matplotlib).\n"
            "The demo/* presets add VICReg's variance-covariance penalty to every method (method.feature_reg=1,\n"
            "which none of the papers uses: it kept the encoders from collapsing at these learning rates); the\n"
            "tables and plots call them 'V-JEPA + VICReg' etc. --set method.feature_reg=0 trains them as published.\n"
            "Running it again on the same OUT continues where it stopped: finished runs and probes are\n"
            "kept, an interrupted run resumes from its last checkpoint."
        ),
        epilog="examples:\n  videojepa demo --quick --out runs/demo_quick\n"
        "  videojepa demo --budget-steps 600 --teacher-share 0.4 --out runs/demo_600\n"
        "  videojepa demo --set train.lr=1e-3 --probe-set optim.epochs=40 --out runs/demo_lr",
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a small version for a first look: {quick.num_videos} videos, a {quick.budget_steps}-step "
        f"budget, {quick.probe_epochs} probe epochs (full: {full.num_videos}, {full.budget_steps}, "
        f"{full.probe_epochs})",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the data, the weights, the masks and the probes (default 0)"
    )
    p.add_argument(
        "--budget-steps",
        type=int,
        metavar="N",
        help=f"training budget as N V-JEPA steps' FLOPs (default {full.budget_steps}, --quick {quick.budget_steps})",
    )
    p.add_argument(
        "--teacher-share",
        type=float,
        metavar="F",
        help=f"fraction of the budget spent on SALT's teacher (default {full.teacher_share:g})",
    )
    p.add_argument(
        "--num-videos",
        type=int,
        metavar="N",
        help=f"synthetic videos, a quarter for validation (default {full.num_videos}, --quick {quick.num_videos})",
    )
    p.add_argument(
        "--probe-epochs",
        type=int,
        metavar="N",
        help=f"probe training epochs (default {full.probe_epochs}, --quick {quick.probe_epochs})",
    )
    p.add_argument(
        "--curve-points",
        type=_fractions,
        metavar="F,F",
        help="fractions of each run's steps whose encoders are probed for the curves, besides the end "
        f"(default {','.join(f'{f:g}' for f in full.curve_fractions)}, "
        f"--quick {','.join(f'{f:g}' for f in quick.curve_fractions) or 'none'}; '' for none)",
    )
    p.add_argument("--workers", type=int, metavar="N", help="processes rendering the videos (default: all CPUs)")
    p.add_argument(
        "--set",
        dest="pretrain_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for every pretraining config, e.g. --set train.lr=1e-3 (repeatable)",
    )
    p.add_argument(
        "--probe-set",
        dest="probe_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for every probe config, e.g. --probe-set optim.epochs=40 (repeatable)",
    )
    p.set_defaults(func=run)


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fractions such as 0.25,0.5, got {text!r}") from None
    if any(not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"curve points are fractions strictly between 0 and 1, got {text!r}")
    return values


def settings_from_args(args):
    from videojepa.demo import SIZES, DemoSettings

    given = {
        "budget_steps": args.budget_steps,
        "teacher_share": args.teacher_share,
        "num_videos": args.num_videos,
        "probe_epochs": args.probe_epochs,
        "curve_fractions": args.curve_points,
    }
    size = dataclasses.replace(
        SIZES["quick" if args.quick else "full"], **{k: v for k, v in given.items() if v is not None}
    )
    return DemoSettings(
        out=args.out,
        size=size,
        seed=args.seed,
        pretrain_overrides=tuple(args.pretrain_overrides),
        probe_overrides=tuple(args.probe_overrides),
        workers=args.workers,
    )


def run(args) -> int:
    from videojepa.demo import run_demo
    from videojepa.demo.report import markdown_table
    from videojepa.errors import UserError

    settings = settings_from_args(args)
    if settings.size.num_videos < 8 or settings.size.probe_epochs < 1:
        raise UserError("--num-videos must be at least 8 and --probe-epochs at least 1")
    results = run_demo(settings)
    print()
    print(markdown_table(results), end="")
    print(
        f"\nresults: {args.out}/results.md (table), {args.out}/results.json (everything); "
        f"plots: {', '.join(results['plots'])}"
    )
    return 0
