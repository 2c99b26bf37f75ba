"""`videojepa localize CONFIG [key=value ...]`: frozen action localisation (AVA protocol), boxes in, mAP out."""

from __future__ import annotations

import argparse

from videojepa.cli.common import add_config_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "localize",
        help="frozen action localisation (AVA): RoI features of a frozen encoder, a linear head, frame mAP",
        description="Train a linear multi-label head on RoIAlign features of a frozen encoder (the token maps of\n"
        "probe.layers, averaged over the clip centred on each keyframe) and report the frame mAP at IoU 0.5 of the\n"
        "validation boxes, computed as the official AVA evaluator does.\n\n"
        "Key settings: probe.checkpoint (run directory, encoder file, or `none` for a random-init model.name),\n"
        "data.videos (a folder of <video_id>.<ext> files), data.train / data.val (AVA annotation CSVs),\n"
        "data.labelmap (.pbtxt), data.val_proposals (detector boxes; unset: the ground-truth boxes are\n"
        "evaluated), data.val_excluded / data.train_excluded, data.detection_threshold, run.dir (gets\n"
        "results.json, results.md, detections.csv, keyframes.png, config.yaml).\n\n"
        "AVA's own files: ava_train_v2.2.csv, ava_val_v2.2.csv, ava_action_list_v2.2_for_activitynet_2019.pbtxt,\n"
        "ava_{train,val}_excluded_timestamps_v2.2.csv, person-box proposals (e.g. SlowFast's\n"
        'ava_val_predicted_boxes.csv) and the movies (README, "Action localisation").',
        epilog="examples:\n"
        "  videojepa data synth --out data/synth\n"
        "  videojepa localize demo/localize probe.checkpoint=runs/demo/runs/vjepa run.dir=runs/localize\n"
        "  videojepa localize eval/ava probe.checkpoint=vitl.safetensors data.videos=ava/videos run.dir=runs/ava",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    p.add_argument("--quiet", action="store_true", help="print only the final table")
    p.set_defaults(func=run)


def run(args) -> int:
    from videojepa.config.loader import load_config
    from videojepa.eval.localize import run_localization
    from videojepa.eval.localize_config import LocalizeConfig
    from videojepa.eval.localize_report import markdown_summary

    cfg = load_config(args.config, args.overrides, schema=LocalizeConfig)
    results = run_localization(cfg, log=None if args.quiet else print)
    print(markdown_summary(results), end="")
    print(f"wrote {cfg.run.dir}/results.json, results.md and detections.csv")
    return 0
