"""`videojepa masks CONFIG`: mask statistics and pictures for a config's mask generators.

A plan config (top-level `stages:`, e.g. paper/salt_vitl) is reported stage by stage.
"""

from __future__ import annotations

import json
from pathlib import Path

from videojepa.cli.common import add_config_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "masks",
        help="mask statistics (--stats/--json) and pictures (--out masks.png)",
        description="Sample the config's mask generators on its token grid and report, per generator, the "
        "mean masking ratio and mean context/target token counts over many batches, or draw "
        "the masks of a few samples. A plan config (top-level `stages:`, e.g. paper/salt_vitl) is "
        'reported per stage: a table per stage, JSON {"stages": [{"name", "config", ...}]}, '
        "and one picture per stage (--out masks.png writes masks_<stage>.png).",
    )
    add_config_arguments(p)
    p.add_argument("--stats", action="store_true", help="print a statistics table (default when nothing else asked)")
    p.add_argument("--json", action="store_true", help="print statistics as JSON")
    p.add_argument("--out", metavar="PNG", help="draw the masks of a few samples into this PNG (needs matplotlib)")
    p.add_argument("--batches", type=int, default=100, help="batches to sample for statistics (default 100)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="samples per batch (default: train.batch_size, at most 64; the equal-length cut depends on it)",
    )
    p.add_argument("--samples", type=int, default=4, help="samples drawn by --out (default 4)")
    p.set_defaults(func=run)


def mask_report(cfg, args, out: str | None) -> dict | None:
    """Draw `cfg`'s masks into `out` if given; returns its statistics when they are asked for."""
    from videojepa.masks import build_mask_generators, mask_statistics, token_grid
    from videojepa.masks.build import describe

    batch_size = args.batch_size or min(cfg.train.batch_size, 64)
    generators = build_mask_generators(cfg)
    if out:
        from videojepa.masks.plot import draw_masks, sample_masks

        draw_masks(sample_masks(generators, [describe(m) for m in cfg.masks], args.samples, cfg.run.seed), out)
        print(f"wrote {out}")
    if not (args.json or args.stats or not args.out):
        return None
    stats = mask_statistics(generators, batch_size, args.batches, cfg.run.seed)
    for s, m in zip(stats, cfg.masks):
        s["generator"] = describe(m)
    return {"grid": list(token_grid(cfg)), "batch_size": batch_size, "batches": args.batches, "generators": stats}


def print_table(doc: dict) -> None:
    stats = doc["generators"]
    print(f"grid {doc['grid']} ({stats[0]['tokens']} tokens), {doc['batches']} batches of {doc['batch_size']}")
    print(f"{'generator':<28}{'mask ratio':>11}{'context':>9}{'target':>9}{'min ctx':>9}")
    for s in stats:
        print(
            f"{s['generator']:<28}{s['mask_ratio']:>11.3f}{s['context_tokens']:>9.1f}"
            f"{s['target_tokens']:>9.1f}{s['min_context_tokens']:>9}"
        )


def stage_picture(out: str | None, stage: str) -> str | None:
    """masks.png -> masks_teacher.png for one stage of a plan."""
    return None if not out else str(Path(out).with_name(f"{Path(out).stem}_{stage}{Path(out).suffix or '.png'}"))


def run(args) -> int:
    from videojepa.config.loader import load_config, stage_config
    from videojepa.config.schema import PlanConfig
    from videojepa.errors import UserError

    if args.batches < 1 or (args.batch_size is not None and args.batch_size < 1):
        raise UserError("--batches and --batch-size must be at least 1")
    cfg = load_config(args.config, args.overrides)
    if not isinstance(cfg, PlanConfig):
        doc = mask_report(cfg, args, args.out)
        if doc is not None and args.json:
            print(json.dumps(doc, indent=2))
        elif doc is not None:
            print_table(doc)
        return 0
    stages = []
    for stage in cfg.stages:
        doc = mask_report(stage_config(stage), args, stage_picture(args.out, stage.name))
        if doc is not None:
            stages.append({"name": stage.name, "config": stage.config, **doc})
    if stages and args.json:
        print(json.dumps({"stages": stages}, indent=2))
    elif stages:
        for i, stage in enumerate(stages):
            print(("\n" if i else "") + f"stage {stage['name']} ({stage['config']})")
            print_table(stage)
    return 0
