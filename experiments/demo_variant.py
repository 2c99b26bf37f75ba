"""One demo pretraining run with changed settings, probed on motion like the demo (JSON on stdout).

    python experiments/demo_variant.py --demo runs/demo_s0 --method vjepa --steps 120 --out runs/exp/lr3e4 \
        train.lr=3e-4 train.start_lr=6e-5

Trains `demo/<method>` on the demo folder's motion videos with the demo's own code path
(`videojepa.demo.run.pretrain_config` with the overrides, `with_steps`, the Trainer), then trains the demo's
attentive probe (demo/probe: 30 epochs, its lr x wd grid) on the motion task only. The demo folder's
random-init row (same videos, same seed) is the baseline to compare with. Prints the motion top-1, its
split into sub-problems (`videojepa.demo.report.motion_split`), every grid cell, and the run's final
health monitors. The run and probe directories are ordinary ones: a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", required=True, help="a demo output folder: its data/ and seed are used")
    parser.add_argument("--method", default="vjepa", choices=("vjepa", "salt_teacher", "videomae"))
    parser.add_argument("--steps", type=int, default=120, help="training steps (default: the demo's V-JEPA budget)")
    parser.add_argument("--out", required=True, help="folder for run/ and probe/")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE pretraining overrides, as `videojepa pretrain`")
    args = parser.parse_args()

    from videojepa.config.loader import load_config
    from videojepa.demo import run as demo
    from videojepa.demo.report import motion_split
    from videojepa.eval.config import ProbeConfig
    from videojepa.eval.runner import run_probe
    from videojepa.train.trainer import Trainer

    demo_dir, out = Path(args.demo), Path(args.out)
    settings = json.loads((demo_dir / "settings.json").read_text())
    seed, epochs, data = settings["seed"], settings["probe_epochs"], demo_dir / "data"
    cfg = demo.with_steps(
        demo.pretrain_config(args.method, out / "run", data, seed, overrides=args.overrides), args.steps
    )
    start = time.perf_counter()
    Trainer(cfg).fit()
    trained = time.perf_counter() - start
    motion = {"name": "motion", "train": str(data / "motion/train.csv"), "val": str(data / "motion/val.csv")}
    probe_cfg = load_config(
        "demo/probe",
        [
            ("run.dir", str(out / "probe")),
            ("run.seed", seed),
            ("optim.epochs", epochs),
            ("probe.checkpoint", str(out / "run")),
            ("tasks", [motion]),
        ],
        schema=ProbeConfig,
    )
    task = run_probe(probe_cfg, log=None)["tasks"][0]
    health = demo.last_health(out / "run")
    print(
        json.dumps(
            {
                "demo": str(demo_dir),
                "seed": seed,
                "method": args.method,
                "steps": args.steps,
                "overrides": args.overrides,
                "motion_top1": task["top1"],
                "motion_split": motion_split(task["classes"], task["confusion"]),
                "cells": [{k: c[k] for k in ("lr", "weight_decay", "top1", "train_loss")} for c in task["cells"]],
                "health": health,
                "train_s": round(trained, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
