"""Mean ± std over seeds of several `videojepa demo` runs (one results.json per seed), as a Markdown table.

    for s in 0 1 2; do videojepa demo --seed $s --out runs/demo_s$s; done
    python experiments/demo_seeds.py runs/demo_s0 runs/demo_s1 runs/demo_s2 [--json]

Each argument is a demo output folder or its results.json. The runs must share everything but the seed
(same budget, data size and overrides); the table adds, per method, the margin over the random-init
encoder of the same seed (paired, so data and probe noise shared by both cancel).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

SAME = (
    "num_videos",
    "budget_steps",
    "teacher_share",
    "probe_epochs",
    "frames",
    "size",
    "pretrain_overrides",
    "probe_overrides",
)


def load(path: str) -> dict:
    p = Path(path)
    p = p / "results.json" if p.is_dir() else p
    if not p.exists():
        raise SystemExit(f"{p} not found: is that demo finished?")
    return json.loads(p.read_text())


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * spread:.1f}"


def summarise(results: list[dict]) -> dict:
    first = results[0]["settings"]
    for r in results[1:]:
        differ = [k for k in SAME if r["settings"].get(k) != first.get(k)]
        if differ:
            raise SystemExit(f"runs differ in more than the seed: {', '.join(differ)}")
    tasks = list(results[0]["chance"])
    rows = {}
    for r in results:
        base = next(row for row in r["rows"] if row["name"] == "random_init")["top1"]
        for row in r["rows"]:
            entry = rows.setdefault(
                row["name"], {"label": row["label"], "top1": {t: [] for t in tasks}, "margin": {t: [] for t in tasks}}
            )
            for t in tasks:
                entry["top1"][t].append(row["top1"][t])
                entry["margin"][t].append(row["top1"][t] - base[t])
    return {
        "seeds": [r["settings"]["seed"] for r in results],
        "settings": first,
        "chance": results[0]["chance"],
        "rows": rows,
    }


def markdown(summary: dict) -> str:
    tasks = list(summary["chance"])
    head = " | ".join(f"{t} top-1 | {t} − random init" for t in tasks)
    lines = [
        f"| method | {head} |",
        "|---" * (1 + 2 * len(tasks)) + "|",
        "| chance | " + " | ".join(f"{100 * summary['chance'][t]:.1f} | -" for t in tasks) + " |",
    ]
    for row in summary["rows"].values():
        cells = " | ".join(f"{mean_std(row['top1'][t])} | {mean_std(row['margin'][t])}" for t in tasks)
        lines.append(f"| {row['label']} | {cells} |")
    return "\n".join(lines) + f"\n\nSeeds {summary['seeds']}; mean ± std (sample) over seeds, top-1 in %.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="demo output folders or results.json files, one per seed")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead")
    args = parser.parse_args()
    summary = summarise([load(p) for p in args.runs])
    print(json.dumps(summary, indent=1) if args.json else markdown(summary), end="")


if __name__ == "__main__":
    main()
