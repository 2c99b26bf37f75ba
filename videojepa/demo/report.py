"""The demo's report: OUT/results.json (schema below) and the Markdown table of OUT/results.md.

results.json (schema "videojepa.demo/1"):

    {
      "schema": "videojepa.demo/1",
      "created": "2025-01-01T12:00:00+00:00",         # UTC, ISO 8601
      "settings": {"out", "num_videos", "frames", "size", "budget_steps", "teacher_share", "probe_epochs",
                   "seed", "pretrain_overrides": [...], "probe_overrides": [...]},
      "data": {"dir", "num_videos", "num_train", "num_val", "motion_classes": [...], "appearance_classes": [...]},
      "budget": {
        "flops": 1.9e13,                  # training FLOPs every method may spend (SALT: teacher + student)
        "budget_steps": 300,              # = this many V-JEPA steps ...
        "vjepa_flops_per_step": 6.3e10,   # ... at this cost (paper's 6ND/2ND rule, measured masking ratio)
        "teacher_share": 0.2, "mask_ratio": "measured"
      },
      "chance": {"motion": 0.167, "appearance": 0.25},        # 1 / number of classes
      "runs": {                           # the pretraining runs, in training order
        "salt_teacher" | "salt_student" | "vjepa" | "videomae": {
          "method", "dir", "steps",
          "budget": 3.8e12,               # FLOPs allotted to this run
          "flops_per_step", "flops",      # flops = steps x flops_per_step <= budget
          "wall_s": 41.0,                 # training seconds, summed over the sessions that trained it
          "trained_now": true,            # trained (or resumed) by this invocation, not found finished
          "health": {"step", "loss", "feature_rank", "feature_std", "target_std", "pred_std",
                     "collapse_warning"}  # the run's last full metrics record; feature_rank is RankMe
        }
      },
      "probes": {                         # the attentive probes: one per run, and the random-init encoder
        "random_init" | "salt_teacher" | "salt_student" | "vjepa" | "videomae": {
          "dir", "checkpoint",            # checkpoint: a run directory or "none"
          "top1": {"motion": 0.52, "appearance": 0.91},   # best cell of the probe's lr x wd grid, validation set
          "confusion": {"motion": {"classes": [...], "matrix": [[...]]}, ...},   # that cell's [true][predicted]
          "seconds": 12.0
        }
      },
      "rows": [                           # the table below the chance row, top to bottom
        {"name": "random_init" | "salt_teacher" | "salt" | "vjepa" | "videomae",
         "label": "V-JEPA",
         "runs": ["vjepa"],               # pretraining runs it sums ([] for random init; SALT: teacher, student)
         "flops": 1.9e13, "steps": [300], "wall_s": 140.0,   # sums over "runs" (steps: one per run)
         "probe": "vjepa",                # the probed encoder (SALT: its student)
         "top1": {"motion": 0.52, "appearance": 0.91},
         "motion_split": {"spin_vs_translation": 0.9, "rotation_sense": 0.6, "translation_kind": 0.6} | null}
      ],                                  # motion_split: see `motion_split`; null without a confusion matrix
      "plots": ["runs/demo/loss_curves.png", ...]
    }

Accuracies are fractions (0..1); the Markdown table shows them in percent.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

SCHEMA = "videojepa.demo/1"
TOP_KEYS = ("schema", "created", "settings", "data", "budget", "chance", "runs", "probes", "rows")
RUN_KEYS = ("method", "dir", "steps", "budget", "flops_per_step", "flops", "wall_s", "trained_now", "health")
ROW_KEYS = ("name", "label", "runs", "flops", "steps", "wall_s", "probe", "top1", "motion_split")
SPINNING = ("rotate_cw", "rotate_ccw")  # the synthetic motion classes whose label is the rotation sense
SPLIT_LABELS = {
    "spin_vs_translation": "spinning vs translating",
    "rotation_sense": "rotation sense",
    "translation_kind": "which translation",
}

# Table rows: (name, label, the pretraining runs they sum). The encoder probed is the last run's.
ROWS = (
    ("random_init", "random init (no pretraining)", ()),
    ("salt_teacher", "SALT teacher alone (V-Pixel)", ("salt_teacher",)),
    ("salt", "SALT (teacher + student)", ("salt_teacher", "salt_student")),
    ("vjepa", "V-JEPA", ("vjepa",)),
    ("videomae", "VideoMAE", ("videomae",)),
)


def motion_split(classes: list[str], matrix: list[list[int]]) -> dict | None:
    """The synthetic motion task's accuracy split into its sub-problems, from a confusion matrix
    [true][predicted] (None unless both spinning classes and at least two translating ones are there):
      spin_vs_translation  spinning vs translating classes, each group merged;
      rotation_sense       rotate_cw vs rotate_ccw, among spinning clips predicted as spinning;
      translation_kind     the translating class, among translating clips predicted as translating.
    Chance of the last two is 1 / (classes in the group); a single frame shows none of them."""
    spin = [classes.index(c) for c in SPINNING if c in classes]
    rest = [i for i in range(len(classes)) if i not in spin]
    if len(spin) < 2 or len(rest) < 2:
        return None

    def within(group: list[int]) -> float:
        block = [matrix[i][j] for i in group for j in group]
        return sum(matrix[i][i] for i in group) / max(sum(block), 1)

    same_group = sum(matrix[i][j] for g in (spin, rest) for i in g for j in g)
    return {
        "spin_vs_translation": same_group / max(sum(map(sum, matrix)), 1),
        "rotation_sense": within(spin),
        "translation_kind": within(rest),
    }


def build_results(settings, data: dict, budget: dict, runs: dict, probes: dict, chance: dict) -> dict:
    """The results.json document from the demo's pieces (see `videojepa.demo.run.run_demo`)."""
    rows = []
    for name, label, names in ROWS:
        probe = names[-1] if names else "random_init"
        rows.append(
            {
                "name": name,
                "label": label,
                "runs": list(names),
                "flops": sum(runs[n]["flops"] for n in names),
                "steps": [runs[n]["steps"] for n in names],
                "wall_s": sum(runs[n]["wall_s"] for n in names),
                "probe": probe,
                "top1": probes[probe]["top1"],
                "motion_split": _split(probes[probe].get("confusion", {}).get("motion")),
            }
        )
    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {"out": str(settings.out), **settings.record()},
        "data": {
            "dir": str(Path(settings.out) / "data"),
            **{k: data[k] for k in ("num_videos", "num_train", "num_val", "motion_classes", "appearance_classes")},
        },
        "budget": {k: v for k, v in budget.items() if k != "runs"},
        "chance": chance,
        "runs": {name: {k: run[k] for k in RUN_KEYS} for name, run in runs.items()},
        "probes": probes,
        "rows": rows,
    }


def _split(confusion: dict | None) -> dict | None:
    return None if not confusion else motion_split(confusion["classes"], confusion["matrix"])


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def markdown_table(results: dict) -> str:
    """A one-line caption, then the table: chance, random init, then every method at the same budget."""
    b, tasks = results["budget"], list(results["chance"])
    lines = [
        f"Training budget {b['flops']:.3g} FLOPs for every method (= {b['budget_steps']} V-JEPA steps; "
        f"SALT teacher share {b['teacher_share']:g}); attentive-probe top-1 (%) on the validation set.",
        "",
        "| method | training FLOPs | steps | wall time | " + " | ".join(f"{t} top-1" for t in tasks) + " |",
        "|---" * (4 + len(tasks)) + "|",
        "| chance | - | - | - | " + " | ".join(_pct(results["chance"][t]) for t in tasks) + " |",
    ]
    for row in results["rows"]:
        runs = [results["runs"][n] for n in row["runs"]]
        if not runs:
            flops, steps, wall = "0", "0", "-"
        else:
            flops = " + ".join(f"{r['flops']:.3g}" for r in runs)
            flops += f" = {row['flops']:.3g}" if len(runs) > 1 else ""
            steps = " + ".join(str(s) for s in row["steps"])
            wall = _seconds(row["wall_s"])
        accuracy = " | ".join(_pct(row["top1"].get(t)) for t in tasks)
        lines.append(f"| {row['label']} | {flops} | {steps} | {wall} | {accuracy} |")
    if any(row.get("motion_split") for row in results["rows"]):
        lines += [
            "",
            "The motion score split into its sub-problems (best probe cell, validation clips, %; "
            "rotation sense and which translation among clips put in the right group; chance 50% each "
            "with the default four classes):",
            "",
            "| method | " + " | ".join(SPLIT_LABELS.values()) + " |",
            "|---" * (1 + len(SPLIT_LABELS)) + "|",
        ]
        for row in results["rows"]:
            parts = row.get("motion_split") or {}
            lines.append(f"| {row['label']} | " + " | ".join(_pct(parts.get(k)) for k in SPLIT_LABELS) + " |")
    return "\n".join(lines) + "\n"


def check_results(results: dict) -> None:
    """Raise ValueError if `results` does not follow the documented schema."""
    if results.get("schema") != SCHEMA:
        raise ValueError(f"schema must be {SCHEMA!r}, got {results.get('schema')!r}")
    missing = [k for k in TOP_KEYS if k not in results]
    missing += [f"runs.{n}.{k}" for n, r in results.get("runs", {}).items() for k in RUN_KEYS if k not in r]
    missing += [f"rows.{i}.{k}" for i, r in enumerate(results.get("rows", [])) for k in ROW_KEYS if k not in r]
    if missing:
        raise ValueError(f"results miss keys: {', '.join(missing)}")


def write_results(out: str | Path, results: dict) -> tuple[Path, Path]:
    """Write results.json and results.md atomically into `out`; returns their paths."""
    from videojepa.utils.files import write_json_and_markdown

    check_results(results)
    return write_json_and_markdown(out, results, markdown_table(results))
