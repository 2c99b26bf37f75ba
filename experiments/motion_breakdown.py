"""Where the demo's motion accuracy comes from, over seeds: the motion score split into its sub-problems.

    python experiments/motion_breakdown.py runs/demo_s0 runs/demo_s1 runs/demo_s2 [--json out.json]

Per encoder, mean ± std over the demo folders (one per seed) of the motion top-1 and of its split
(`videojepa.demo.report.motion_split`, from the best probe cell's confusion matrix on the validation
clips): spinning vs translating classes, rotation sense among spinning clips, and which translation
among translating clips (chance 50% each with the default four classes).
Probe results written before probes recorded their confusion matrix are re-probed on motion from the
demo's cached features (same config and seed, into DEMO/breakdown/<encoder>): a probe's training time,
no encoder forward.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from videojepa.demo.report import SPLIT_LABELS, motion_split

ENCODERS = ("random_init", "salt_teacher", "salt_student", "vjepa", "videomae")


def motion_task(demo: Path, encoder: str) -> dict:
    """The motion task of the encoder's probe results, with its confusion matrix."""
    probe_dir = demo / "probes" / encoder
    results = json.loads((probe_dir / "results.json").read_text())
    task = next(t for t in results["tasks"] if t["name"] == "motion")
    if "confusion" in task:
        return task
    from videojepa.config.loader import load_config
    from videojepa.eval.config import ProbeConfig
    from videojepa.eval.runner import run_probe

    cfg = results["config"]
    cfg["run"]["dir"] = str(demo / "breakdown" / encoder)
    cfg["features"]["dir"] = str(probe_dir / "features")  # the demo's cached features: no encoder forward
    cfg["tasks"] = [t for t in cfg["tasks"] if t["name"] == "motion"]
    return run_probe(load_config(cfg, schema=ProbeConfig), log=None)["tasks"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demos", nargs="+", help="demo output folders (one per seed)")
    parser.add_argument("--json", help="also write every folder's numbers here")
    args = parser.parse_args()
    rows = {e: [] for e in ENCODERS}
    for demo in map(Path, args.demos):
        for encoder in ENCODERS:
            if (demo / "probes" / encoder / "results.json").exists():
                task = motion_task(demo, encoder)
                parts = motion_split(task["classes"], task["confusion"])
                if parts is None:
                    raise SystemExit(f"{demo}: the motion classes {task['classes']} have no spinning/translating split")
                rows[encoder].append({"demo": str(demo), "top1": task["top1"], **parts})
    keys = ("top1", *SPLIT_LABELS)
    print("| encoder | seeds | motion top-1 | " + " | ".join(SPLIT_LABELS.values()) + " |")
    print("|---|---|" + "---|" * len(keys))
    for encoder, found in rows.items():
        if found:
            stats = [
                (statistics.mean(r[k] for r in found), statistics.stdev(r[k] for r in found) if len(found) > 1 else 0.0)
                for k in keys
            ]
            print(
                f"| {encoder} | {len(found)} | " + " | ".join(f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in stats) + " |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
