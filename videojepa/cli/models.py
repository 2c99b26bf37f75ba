"""`videojepa models`: the model registry with parameter counts, the pretraining methods, and the config presets."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list encoder architectures (with parameter counts), methods and presets",
        description="List registered encoder architectures with parameter counts "
        "(built on the meta device, patch 16, tubelet 2), the registered "
        "pretraining methods (values of method.name) and config presets.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--presets", action="store_true", help="list config presets only")
    p.set_defaults(func=run)


def run(args) -> int:
    from videojepa.config.loader import list_presets
    from videojepa.methods import get_method, list_methods
    from videojepa.models.registry import ARCHITECTURES, count_parameters

    if args.presets:
        print("\n".join(list_presets()))
        return 0
    rows = []
    for name, arch in ARCHITECTURES.items():
        rows.append(
            dict(
                name=name,
                embed_dim=arch["embed_dim"],
                depth=arch["depth"],
                num_heads=arch["num_heads"],
                mlp_hidden=arch.get("mlp_hidden", 4 * arch["embed_dim"]),
                params=count_parameters(name),
            )
        )
    methods = [dict(name=name, networks=get_method(name).networks) for name in list_methods()]
    if args.json:
        print(json.dumps({"models": rows, "methods": methods, "presets": list_presets()}, indent=2))
        return 0
    print(f"{'model':<14}{'width':>7}{'depth':>7}{'heads':>7}{'mlp':>7}{'params':>12}")
    for r in rows:
        print(
            f"{r['name']:<14}{r['embed_dim']:>7}{r['depth']:>7}{r['num_heads']:>7}{r['mlp_hidden']:>7}"
            f"{r['params'] / 1e6:>11.1f}M"
        )
    print("\nmethods (method.name):")
    for m in methods:
        print(f"  {m['name']:<14}" + ", ".join(f"{net} ({role})" for net, role in m["networks"].items()))
    print("\npresets: " + ", ".join(list_presets()))
    return 0
