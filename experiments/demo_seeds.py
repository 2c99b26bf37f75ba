"""Mean ± std over seeds of several `videojepa demo` runs (one results.json per seed), as a Markdown table.

    for s in 0 1 2; do videojepa demo --seed $s --out runs/demo_s$s; done
    python experiments/demo_seeds.py runs/demo_s0 runs/demo_s1 runs/demo_s2 [--json]

Each argument is a demo output folder or its results.json. The runs must share everything but the seed
(same budget, data size and overrides); the table adds, per method, task and probe protocol, the margin over
the random-init encoder of the same seed (paired, so data and probe noise shared by both cancel), with each
seed's margin listed. Results of schema videojepa.demo/1 (one protocol: attentive) are read too.
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


def row_scores(row: dict) -> dict:
    """{(task, protocol): top-1} of a results row, for schema 1 (attentive only) and 2 (per protocol)."""
    top1 = row["top1"]
    if top1 and all(isinstance(v, float) for v in top1.values()):  # schema 1
        return {(t, "attentive"): v for t, v in top1.items()}
    return {(t, k): v for k, tasks in top1.items() for t, v in tasks.items()}


def summarise(results: list[dict]) -> dict:
    first = results[0]["settings"]
    for r in results[1:]:
        differ = [k for k in SAME if r["settings"].get(k) != first.get(k)]
        if differ:
            raise SystemExit(f"runs differ in more than the seed: {', '.join(differ)}")
    rows = {}
    for r in results:
        base = row_scores(next(row for row in r["rows"] if row["name"] == "random_init"))
        for row in r["rows"]:
            entry = rows.setdefault(row["name"], {"label": row["label"], "top1": {}, "margin": {}})
            for column, value in row_scores(row).items():
                key = f"{column[0]} {column[1]}"
                entry["top1"].setdefault(key, []).append(value)
                entry["margin"].setdefault(key, []).append(value - base[column])
    return {
        "seeds": [r["settings"]["seed"] for r in results],
        "settings": first,
        "chance": results[0]["chance"],
        "rows": rows,
    }


def markdown(summary: dict) -> str:
    columns = list(next(iter(summary["rows"].values()))["top1"])
    lines = [
        "| method | probe | " + " | ".join(f"{c} top-1 | − random init | per seed" for c in columns) + " |",
        "|---" * (2 + 3 * len(columns)) + "|",
    ]
    chance = " | ".join(f"{100 * summary['chance'][c.split()[0]]:.1f} | - | -" for c in columns)
    lines.append(f"| chance | - | {chance} |")
    for row in summary["rows"].values():
        cells = []
        for c in columns:
            per_seed = ", ".join(f"{100 * m:+.1f}" for m in row["margin"][c])
            cells.append(f"{mean_std(row['top1'][c])} | {mean_std(row['margin'][c])} | {per_seed}")
        lines.append(f"| {row['label']} | | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nSeeds {summary['seeds']}; mean ± std (sample) over seeds, top-1 in %.\n"


def transposed(summary: dict) -> str:
    """One line per (method, task, protocol): easier to read with several protocols."""
    lines = [
        "| method | task | probe | top-1 | − random init | margin per seed |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary["rows"].values():
        for c in row["top1"]:
            task, protocol = c.split(" ", 1)
            per_seed = ", ".join(f"{100 * m:+.1f}" for m in row["margin"][c])
            margin = "-" if row["label"].startswith("random init") else mean_std(row["margin"][c])
            lines.append(
                f"| {row['label']} | {task} | {protocol} | {mean_std(row['top1'][c])} | {margin} | {per_seed} |"
            )
    return "\n".join(lines) + f"\n\nSeeds {summary['seeds']}; mean ± std (sample) over seeds, top-1 in %.\n"


def curves(results: list[dict]) -> str:
    """The curves' points (schema 2) over seeds: per curve and step, mean ± std of every protocol's top-1, of
    RankMe and of how far the weights moved."""
    if any("curves" not in r for r in results):
        return ""
    lines = [
        "| curve | step | training FLOPs | probe | motion | appearance | RankMe | weights moved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, curve in results[0]["curves"].items():
        for i, point in enumerate(curve["points"]):
            if i == 0 and name != next(iter(results[0]["curves"])):
                continue  # random init: shown once
            label = "random init" if i == 0 else curve["label"]
            same = [r["curves"][name]["points"][i] for r in results]
            ranks = [p["feature_rank"] for p in same if p.get("feature_rank") is not None]
            drifts = [p["drift"] for p in same if p.get("drift") is not None and i > 0]
            rank = f"{statistics.mean(ranks):.0f}" if ranks else "-"
            drift = mean_std(drifts) if drifts else "-"
            for protocol in point["top1"]:
                cells = []
                for task in ("motion", "appearance"):
                    values = [p["top1"][protocol].get(task) for p in same]
                    cells.append("-" if None in values else mean_std(values))
                lines.append(
                    f"| {label} | {point['step']} | {point['flops']:.3g} | {protocol} | {' | '.join(cells)} "
                    f"| {rank} | {drift} |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="demo output folders or results.json files, one per seed")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead")
    parser.add_argument("--wide", action="store_true", help="one column group per task and protocol")
    parser.add_argument("--curves", action="store_true", help="the accuracy-vs-FLOPs points over seeds instead")
    args = parser.parse_args()
    results = [load(p) for p in args.runs]
    if args.curves:
        print(curves(results), end="")
        return
    summary = summarise(results)
    text = json.dumps(summary, indent=1) if args.json else markdown(summary) if args.wide else transposed(summary)
    print(text, end="")


if __name__ == "__main__":
    main()
