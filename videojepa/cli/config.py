"""`videojepa config CONFIG [key=value ...] [--json]`: the resolved configuration, every key with where it was set."""

from __future__ import annotations

import json

from videojepa.cli.common import add_config_arguments, presets_epilog

# The config kinds and the top-level section that tells each apart (a pretraining config has none of them).
KINDS = ("pretrain", "probe", "localize", "finetune", "plan")
MARKERS = {
    "plan": ("stages",),
    "localize": ("roi",),
    "probe": ("probe", "tasks", "features", "optim"),
    "finetune": ("finetune", "augment"),
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "config",
        help="the resolved configuration: every key, its value, and which file or override set it",
        description="Resolve a config as the command that runs it would (preset or YAML file, its `base:` chain, "
        "typed defaults, key=value overrides; the same checks) and print every key with its value and where it "
        "was set: a preset's name or a file's path, `override`, or `default`. The kind (pretraining, probe, "
        "localisation, fine-tuning, or a plan of stages) is read from the config's sections unless --kind names it.",
        epilog=presets_epilog(),
    )
    add_config_arguments(p)
    p.add_argument("--kind", choices=KINDS, help="the config's kind, when its sections do not tell")
    p.add_argument("--json", action="store_true", help="print {kind, config, sources} as JSON")
    p.set_defaults(func=run)


def detect_kind(source: str) -> str:
    from videojepa.config.loader import read_yaml, resolve_config_path

    sections = set(read_yaml(resolve_config_path(source)))
    return next((kind for kind, marks in MARKERS.items() if sections & set(marks)), "pretrain")


def resolve(source: str, overrides: list, kind: str) -> dict:
    """{kind, config (nested), sources (dotted key -> setter)} of one config."""
    from videojepa.config.loader import load_config, to_dict
    from videojepa.config.provenance import config_sources, flatten

    if kind == "probe":
        from videojepa.eval.config import ProbeConfig as schema
    elif kind == "localize":
        from videojepa.eval.localize_config import LocalizeConfig as schema
    elif kind == "finetune":
        from videojepa.finetune.config import FinetuneConfig as schema
    else:
        from videojepa.config.schema import PretrainConfig as schema
    cfg = load_config(source, overrides, schema=schema)
    if kind not in ("probe", "localize", "finetune"):  # a pretraining config, or a plan's stage
        from videojepa.methods import check_config

        check_config(cfg)  # the method's rules across sections, as `videojepa pretrain` runs them
    config = to_dict(cfg)
    keys = flatten(config)
    return {"kind": kind, "config": config, "sources": config_sources(source, overrides, keys, kind == "pretrain")}


def run(args) -> int:
    from videojepa.config.loader import load_config, stage_config
    from videojepa.config.provenance import flatten

    kind = args.kind or detect_kind(args.config)
    if kind == "plan":
        plan = load_config(args.config, args.overrides)  # checks every stage, applies the plan's overrides to each
        stages = []
        for stage in plan.stages:
            stage_config(stage)
            resolved = resolve(stage.config, [f"{k}={json.dumps(v)}" for k, v in stage.overrides.items()], "pretrain")
            stages.append({"name": stage.name, **resolved})
        report = {"kind": "plan", "stages": stages}
    else:
        report = resolve(args.config, args.overrides, kind)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for part in report["stages"] if kind == "plan" else [report]:
        if kind == "plan":
            print(f"# stage {part['name']}")
        values = flatten(part["config"])
        width = max(len(k) for k in values)
        shown = {k: json.dumps(v) for k, v in values.items()}
        value_width = min(max(len(v) for v in shown.values()), 40)
        for key, value in shown.items():
            print(f"{key:<{width}}  {value:<{value_width}}  {part['sources'][key]}")
    return 0
