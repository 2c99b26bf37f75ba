"""Every probe protocol on one encoder and several synthetic tasks (JSON on stdout and in OUT/protocols.json).

    python experiments/probe_protocols.py --encoder runs/exp/vjepa/run --out runs/exp/vjepa/probes \
        --task motion=runs/demo/data/motion --task motion2=runs/motion2/motion --kinds attentive linear_frames

For each task (a folder with train.csv / val.csv) and each probe kind, the demo/probe preset (30 epochs, its
lr x wd grid; kNN has no training) with `probe.kind` and, for the `_frames` kinds, each `--frame-grid`.
The encoder is a run directory, an encoder file, or `none` (the demo's random-init vit_micro, seed --seed).
All probes of one encoder share a feature folder: the tokens are extracted once per task (by the first
attentive probe, or pooled at extraction when no attentive probe is asked for).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--task", action="append", required=True, help="NAME=FOLDER (with train.csv, val.csv)")
    parser.add_argument("--kinds", nargs="+", default=["attentive", "linear_frames", "knn_frames"])
    parser.add_argument("--frame-grid", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE probe config overrides")
    args = parser.parse_args()

    from videojepa.config.loader import load_config
    from videojepa.eval.config import ProbeConfig
    from videojepa.eval.runner import run_probe

    out = Path(args.out)
    results = []
    for spec in args.task:
        name, folder = spec.split("=", 1)
        task = {"name": name, "train": f"{folder}/train.csv", "val": f"{folder}/val.csv"}
        for kind in args.kinds:
            for grid in args.frame_grid if kind.endswith("_frames") else [None]:
                label = kind if grid is None else f"{kind}:{grid}"
                own = {
                    "run.dir": str(out / name / label.replace(":", "_g")),
                    "run.seed": args.seed,
                    "probe.checkpoint": args.encoder,
                    "probe.kind": kind,
                    "optim.epochs": args.epochs,
                    "features.dir": str(out / "features"),
                    "tasks": [task],
                }
                if grid is not None:
                    own["probe.frame_grid"] = grid
                cfg = load_config("demo/probe", [*args.overrides, *own.items()], schema=ProbeConfig)
                r = run_probe(cfg, log=None)
                t = r["tasks"][0]
                row = {
                    "task": name,
                    "probe": label,
                    "top1": t["top1"],
                    "chance": t["chance"],
                    "train_loss": min((c.get("train_loss", 0.0) for c in t["cells"]), default=None),
                    "seconds": r["seconds"],
                }
                results.append(row)
                print(json.dumps(row), flush=True)
    doc = {"encoder": args.encoder, "seed": args.seed, "epochs": args.epochs, "results": results}
    (out / "protocols.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
