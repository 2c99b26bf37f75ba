"""`videojepa flops CONFIG`: training FLOPs per stage and in total."""

from __future__ import annotations

import json

from videojepa.cli.common import add_config_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "flops",
        help="training FLOPs of a config (paper's 6ND/2ND rule, and with attention)",
        description="Training FLOPs per stage and in total. `flops` follows the SALT paper's rule "
        "(6*N*D trained, 2*N*D frozen forward, masking ratio 0.9); `flops_with_attention` adds "
        "the attention matrix products. A plan config (top-level `stages:`, e.g. paper/salt_vitl) "
        "sums several pretraining stages.",
    )
    add_config_arguments(p)
    p.add_argument("--json", action="store_true", help="print the full JSON report")
    p.add_argument(
        "--measured-masks",
        action="store_true",
        help="use the context/target lengths the configured mask sampler really produces "
        "instead of the paper's 0.9 masking ratio",
    )
    p.add_argument(
        "--budget",
        type=float,
        metavar="FLOPS",
        help="plan a SALT run within this many FLOPs (CONFIG: a teacher+student plan such as "
        "paper/salt_vitl): steps per stage, and V-JEPA's steps for the same budget",
    )
    p.add_argument(
        "--teacher-share",
        type=float,
        default=0.2,
        metavar="F",
        help="fraction of --budget spent on the teacher (default 0.2)",
    )
    p.add_argument(
        "--memory",
        action="store_true",
        help="instead of FLOPs: accelerator memory per rank (weights, gradients, AdamW states, EMA, "
        "teacher, activations with and without activation checkpointing) under DDP and FSDP2, "
        "and which 24/40/80/141 GB cards it fits; an estimate validated on CPU",
    )
    p.add_argument(
        "--world-size",
        type=int,
        metavar="N",
        help="with --memory: ranks the step is spread over (the FSDP2 divisor; each rank gets "
        "train.batch_size / (N x train.accum_steps) clips; default 1). --memory always uses "
        "the mask sampler's measured context/target lengths",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from videojepa.config.loader import load_config, stage_config
    from videojepa.config.schema import PlanConfig
    from videojepa.errors import UserError
    from videojepa.methods import check_config
    from videojepa.methods.accounting import flops_report
    from videojepa.planner import allocate_budget

    cfg = load_config(args.config, args.overrides)
    for stage in cfg.stages if isinstance(cfg, PlanConfig) else [cfg]:  # each method's rules, before any work
        check_config(stage_config(stage) if isinstance(cfg, PlanConfig) else stage)
    if args.memory:
        if args.budget is not None:
            raise UserError("--memory and --budget are separate reports: give one of them")
        return print_memory(cfg, 1 if args.world_size is None else args.world_size, args.json)
    if args.world_size is not None:
        raise UserError("--world-size only applies with --memory")
    if args.budget is not None:
        if not isinstance(cfg, PlanConfig):
            raise UserError("--budget needs a SALT plan config (teacher and student stages), e.g. paper/salt_vitl")
        plan = allocate_budget(cfg, args.budget, args.teacher_share, args.measured_masks)
        if args.json:
            print(json.dumps(plan, indent=2))
            return 0
        print(f"budget {plan['budget']:.4g} FLOPs, teacher share {plan['teacher_share']:.0%}")
        for s in plan["stages"]:
            print(
                f"  {s['name']:<8} {s['method']:<13} {s['steps']:>9} steps  {s['flops']:.4g} FLOPs "
                f"({s['flops_per_step']:.4g} per step)"
            )
        print(f"  SALT total {plan['salt_flops']:.4g}; V-JEPA total {plan['vjepa_flops']:.4g}")
        return 0
    report = flops_report(cfg, measured_masks=args.measured_masks)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'stage':<12}{'method':<14}{'steps':>10}{'FLOPs':>12}{'+attention':>12}")
    for s in report["stages"]:
        print(f"{s['name']:<12}{s['method']:<14}{s['steps']:>10}{s['flops']:>12.4g}{s['flops_with_attention']:>12.4g}")
        for c in s["components"]:
            kind = "trained" if c["trained"] else "frozen"
            print(f"  {c['name']:<16} {c['params'] / 1e6:8.1f}M params  {c['tokens']:.4g} tokens/step  {kind}")
    print(f"{'total':<36}{report['total_flops']:>12.4g}{report['total_flops_with_attention']:>12.4g}")
    return 0


MEMORY_ROWS = [  # (key in the report, label)
    ("parameters", "parameters (fp32)"),
    ("gradients", "gradients (fp32)"),
    ("adamw_states", "AdamW states (2 x fp32)"),
    ("ema", "EMA copy (fp32)"),
    ("frozen", "frozen networks"),
    ("autocast_weight_copies", "autocast weight copies"),
    ("fsdp2_unsharded", "FSDP2 unsharded blocks"),
    ("activations", "activations (peak)"),
    ("total", "total"),
]


def print_memory(cfg, world_size: int, as_json: bool) -> int:
    from videojepa.errors import UserError
    from videojepa.memory import memory_report

    if world_size < 1:
        raise UserError(f"--world-size must be at least 1, got {world_size}")
    report = memory_report(cfg, world_size)
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    gib = 2**30
    for s in report["stages"]:
        nets = ", ".join(f"{n['name']} {n['params'] / 1e6:.1f}M {n['role']}" for n in s["networks"])
        frozen = ""
        if any(n["role"] == "frozen" for n in s["networks"]):
            frozen = f"; frozen networks {'sharded' if s['frozen_sharded'] else 'replicated'} under FSDP2"
        print(
            f"{s['name']} ({s['method']}): {s['batch_per_rank']} clips per rank x {s['tokens_per_clip']} tokens, "
            f"{s['precision']}{' (bf16 on CUDA)' if s['precision'] == 'auto' else ''}, world size {s['world_size']}; "
            f"{nets}{frozen}"
        )
        columns = [(p, ac) for p in ("ddp", "fsdp2") for ac in ("no_checkpointing", "checkpointing")]
        print(
            f"  {'GiB per rank':<26}"
            + "".join(f"{p.upper() + (' +AC' if ac == 'checkpointing' else ''):>12}" for p, ac in columns)
        )
        for key, label in MEMORY_ROWS:
            values = [s[p][ac].get(key) for p, ac in columns]
            if any(v for v in values):
                print(f"  {label:<26}" + "".join(f"{'-' if v is None else f'{v / gib:.2f}':>12}" for v in values))
        fits = [", ".join(card for card, ok in s[p][ac]["fits"].items() if ok) or "none" for p, ac in columns]
        for (p, ac), cards in zip(columns, fits):
            print(f"  fits {p.upper() + (' +AC' if ac == 'checkpointing' else ''):<21} {cards}")
    print(
        "An estimate (validated on CPU against what autograd saves): fp32 master weights, gradients and AdamW "
        "states, CUDA autocast activations with fused attention; a card fits with 1 GiB kept free for the CUDA "
        "context. Details: videojepa/memory.py"
    )
    return 0
