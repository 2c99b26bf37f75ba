"""`videojepa masks CONFIG`: mask statistics and pictures for a config's mask generators."""
from __future__ import annotations

import json

from videojepa.cli.common import add_config_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "masks", help="mask statistics (--stats/--json) and pictures (--out masks.png)",
        description="Sample the config's mask generators on its token grid and report, per generator, the "
                    "mean masking ratio and mean context/target token counts over many batches, or draw "
                    "the masks of a few samples.")
    add_config_arguments(p)
    p.add_argument("--stats", action="store_true", help="print a statistics table (default when nothing else asked)")
    p.add_argument("--json", action="store_true", help="print statistics as JSON")
    p.add_argument("--out", metavar="PNG", help="draw the masks of a few samples into this PNG (needs matplotlib)")
    p.add_argument("--batches", type=int, default=100, help="batches to sample for statistics (default 100)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="samples per batch (default: train.batch_size, at most 64; the equal-length cut "
                        "depends on it)")
    p.add_argument("--samples", type=int, default=4, help="samples drawn by --out (default 4)")
    p.set_defaults(func=run)


def run(args) -> int:
    from videojepa.config.loader import load_config
    from videojepa.errors import UserError
    from videojepa.masks import build_mask_generators, mask_statistics, token_grid
    from videojepa.masks.build import describe

    cfg = load_config(args.config, args.overrides)
    if args.batches < 1 or (args.batch_size is not None and args.batch_size < 1):
        raise UserError("--batches and --batch-size must be at least 1")
    batch_size = args.batch_size or min(cfg.train.batch_size, 64)
    generators = build_mask_generators(cfg)
    if args.out:
        from videojepa.masks.plot import draw_masks, sample_masks

        draw_masks(sample_masks(generators, [describe(m) for m in cfg.masks], args.samples, cfg.run.seed), args.out)
        print(f"wrote {args.out}")
    if args.json or args.stats or not args.out:
        stats = mask_statistics(generators, batch_size, args.batches, cfg.run.seed)
        for s, m in zip(stats, cfg.masks):
            s["generator"] = describe(m)
        doc = {"grid": list(token_grid(cfg)), "batch_size": batch_size, "batches": args.batches, "generators": stats}
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            print(f"grid {doc['grid']} ({stats[0]['tokens']} tokens), {args.batches} batches of {batch_size}")
            print(f"{'generator':<28}{'mask ratio':>11}{'context':>9}{'target':>9}{'min ctx':>9}")
            for s in stats:
                print(f"{s['generator']:<28}{s['mask_ratio']:>11.3f}{s['context_tokens']:>9.1f}"
                      f"{s['target_tokens']:>9.1f}{s['min_context_tokens']:>9}")
    return 0
