"""`videojepa probe CONFIG [key=value ...]`: frozen evaluation of an encoder on classification tasks."""

from __future__ import annotations

from videojepa.cli.common import add_config_arguments
from videojepa.eval.probes import describe_probe_kinds
from videojepa.eval.tasks import list_evaluations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "probe",
        help="frozen evaluation: attentive / linear / kNN probes, lr x wd grids, multi-clip",
        description="Train probes on a frozen encoder and report validation top-1 per task. Key settings: "
        "probe.checkpoint (pretraining run directory, encoder file, or `none` for a random-init "
        "model.name), data.train and data.val (CSV or folder; or several `tasks:` in the config file), "
        "run.dir (gets results.json, results.md, config.yaml, and probes/TASK.safetensors: the best attentive "
        "probe, which `videojepa evaluate` scores again), probe.kind, probe.heads (default: the encoder's head "
        "count), probe.blocks (self-attention blocks before the cross-attention), optim.lr and "
        "optim.weight_decay (lists: every pair is one probe, all trained in one pass), features.cache (true: "
        "encode the training clips once and train from the cache; false: stream every epoch's freshly augmented "
        "clips through the encoder, validation too, nothing stored; a cache above features.max_cache_gb is "
        "refused before any work), augment.* (the training views: random clips, RandAugment, erasing), "
        "probe.test_views (official: the official code's test views, softmax averaged; resized: short side at "
        "crop x data.eval_resize_ratio, logits averaged). The papers' protocols are presets: eval/k400, eval/ssv2, "
        "eval/in1k, eval/places205, eval/inat21 (V-JEPA), eval/k400_vjepa2, eval/ssv2_vjepa2 (V-JEPA 2).",
        epilog=f"probe kinds (probe.kind): {describe_probe_kinds()}. Evaluation protocols (tasks.N.evaluation): "
        f"{', '.join(list_evaluations())}. "
        "Example: videojepa probe demo/probe probe.checkpoint=runs/demo/runs/vjepa run.dir=runs/probe",
    )
    add_config_arguments(p)
    p.add_argument("--quiet", action="store_true", help="print only the final table")
    p.set_defaults(func=run)


def run(args) -> int:
    from videojepa.config.loader import load_config
    from videojepa.eval.config import ProbeConfig
    from videojepa.eval.report import markdown_table
    from videojepa.eval.runner import run_probe

    cfg = load_config(args.config, args.overrides, schema=ProbeConfig)
    results = run_probe(cfg, log=None if args.quiet else print)
    print(markdown_table(results), end="")
    print(f"wrote {cfg.run.dir}/results.json and results.md")
    return 0
