"""Frozen localisation (`videojepa localize`) of several encoders on the synthetic task, over seeds (JSON out).

    python experiments/localization.py --data runs/ava_exp/data/localization --out sweep.json \\
        --encoder random=none --encoder videomae=runs/ava_exp/videomae --seeds 0 1 2 [key=value ...]

Each (encoder, seed) is one `videojepa localize demo/localize` run (its run directory under --work) with
probe.checkpoint and run.seed set (for `none`, run.seed also draws the random-init encoder, so each seed is
another random network; for a trained encoder it seeds the head) and the given overrides. Box features are
cached per encoder (--features), so a second sweep with other head settings re-encodes nothing. The JSON holds
every run's mAP, chance mAP, ground-truth-box mAP, per-class AP and training loss, and per encoder the mean and
standard deviation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def run_one(data: Path, checkpoint: str, seed: int, run_dir: Path, features: Path, overrides: list[str]) -> dict:
    from videojepa.config.loader import load_config
    from videojepa.eval.localize import run_localization
    from videojepa.eval.localize_config import LocalizeConfig

    cfg = load_config(
        "demo/localize",
        [
            f"probe.checkpoint={checkpoint}",
            f"run.seed={seed}",
            f"run.dir={run_dir}",
            f"features.dir={features}",
            f"data.videos={data}/videos",
            f"data.train={data}/train.csv",
            f"data.val={data}/val.csv",
            f"data.labelmap={data}/labelmap.pbtxt",
            f"data.val_proposals={data}/val_proposals.csv",
            *overrides,
        ],
        schema=LocalizeConfig,
    )
    start = time.perf_counter()
    r = run_localization(cfg, log=None)
    return {
        "seed": seed,
        "mAP": r["mAP"],
        "chance_mAP": r["chance_mAP"],
        "mAP_groundtruth_boxes": r["mAP_groundtruth_boxes"],
        "per_class": {c["name"]: c["ap"] for c in r["classes"]},
        "train_loss": [r["train_loss"][0], r["train_loss"][-1]],
        "seconds": round(time.perf_counter() - start, 1),
        "counts": r["counts"],
    }


def summary(runs: list[dict], key: str) -> dict:
    values = [r[key] for r in runs]
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="the synthetic localization folder")
    parser.add_argument("--encoder", action="append", required=True, help="NAME=CHECKPOINT (none: random init)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--work", type=Path, default=Path("runs/localization"), help="run directories go here")
    parser.add_argument("--features", type=Path, default=None, help="feature cache root (default: under --work)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of demo/localize")
    args = parser.parse_args()
    work = args.work / args.out.stem
    result = {"data": str(args.data), "overrides": args.overrides, "encoders": {}}
    for spec in args.encoder:
        name, _, checkpoint = spec.partition("=")
        runs = []
        for seed in args.seeds:
            # a random-init encoder differs per seed: its features too
            features = (args.features or work / "features") / (f"{name}_s{seed}" if checkpoint == "none" else name)
            runs.append(run_one(args.data, checkpoint, seed, work / f"{name}_s{seed}", features, args.overrides))
            print(name, seed, {k: round(runs[-1][k], 4) for k in ("mAP", "chance_mAP", "mAP_groundtruth_boxes")})
        result["encoders"][name] = {
            "checkpoint": checkpoint,
            "runs": runs,
            **{k: summary(runs, k) for k in ("mAP", "chance_mAP", "mAP_groundtruth_boxes")},
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
