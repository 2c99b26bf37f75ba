"""The demo's report: OUT/results.json (the typed `DemoResults`, schema below) and the Markdown tables of
OUT/results.md.

results.json (schema "videojepa.demo/2"):

    {
      "schema": "videojepa.demo/2",
      "created": "2025-01-01T12:00:00+00:00",         # UTC, ISO 8601
      "settings": {"out", "num_videos", "frames", "size", "budget_steps", "teacher_share", "probe_epochs",
                   "curve_fractions", "curve_videos", "attentive_tasks", "seed", "pretrain_overrides": [...],
                   "probe_overrides": [...]},
      "data": {"dir", "num_videos", "num_train", "num_val", "motion_classes": [...], "appearance_classes": [...]},
      "budget": {
        "flops": 1.9e13,                  # training FLOPs every method may spend (SALT: teacher + student)
        "budget_steps": 300,              # = this many V-JEPA steps ...
        "vjepa_flops_per_step": 6.3e10,   # ... at this cost (paper's 6ND/2ND rule, measured masking ratio)
        "teacher_share": 0.2, "mask_ratio": "measured"
      },
      "chance": {"motion": 0.25, "appearance": 0.25},         # 1 / number of classes
      "protocols": ["attentive", "linear_frames", "knn_frames"],   # the table's probes; the curves' are
      "curve_protocols": ["linear_frames", "knn_frames"],          # the cheap ones (every point)
      "timing": {"data_s", "pretrain_s", "probe_s"},   # seconds this invocation spent on each stage
      "runs": {                           # the pretraining runs, in training order
        "salt_teacher" | "salt_student" | "vjepa" | "videomae": {
          "method", "dir", "steps",
          "budget": 3.8e12,               # FLOPs allotted to this run
          "flops_per_step", "flops",      # flops = steps x flops_per_step <= budget
          "wall_s": 41.0,                 # training seconds, summed over the sessions that trained it
          "trained_now": true,            # trained (or resumed) by this invocation, not found finished
          "snapshots": [0, 30, 60],       # steps whose encoder was kept (0: initial weights) for the curves
          "feature_reg": 1.0,             # method.feature_reg: weight of VICReg's penalty (0: the method as published)
          "health": {"step", "loss", "feature_rank", "feature_std", "target_std", "context_std", "pred_std",
                     "collapse_warning"}  # the run's last full metrics record; feature_rank is RankMe
        }
      },
      "probes": {                         # every probed encoder: random init, each run's snapshots and final one
        "random_init" | "vjepa" | "vjepa_step30" | ...: {
          "dir", "checkpoint",            # checkpoint: a run directory, a snapshot file, or "none"
          "run": "vjepa" | null, "step": 30, "final": false,
          "top1": {"linear_frames": {"motion": 0.52, "appearance": 0.91}, ...},   # per protocol: best cell
                                          # on the whole lists (final encoders only; attentive: attentive_tasks)
          "curve_top1": {"linear_frames": {...}, "knn_frames": {...}},   # on the curves' subset (curve_videos)
          "confusion": {protocol: {"motion": {"classes": [...], "matrix": [[...]]}, ...}},  # [true][predicted]
          "seconds": 12.0
        }
      },
      "rows": [                           # the table below the chance row, top to bottom
        {"name": "random_init" | "salt_teacher" | "salt" | "vjepa" | "videomae",
         "label": "V-JEPA + VICReg",     # "+ VICReg" when a run it sums used method.feature_reg > 0
         "runs": ["vjepa"],               # pretraining runs it sums ([] for random init; SALT: teacher, student)
         "flops": 1.9e13, "steps": [300], "wall_s": 140.0,   # sums over "runs" (steps: one per run)
         "probe": "vjepa",                # the probed encoder (SALT: its student)
         "top1": {protocol: {"motion": 0.52, "appearance": 0.91}},
         "motion_split": {protocol: {"spin_vs_translation", "rotation_sense", "translation_kind"} | null}}
      ],                                  # motion_split: see `motion_split`
      "curves": {                         # accuracy against training FLOPs: each starts at random init (0 FLOPs)
        "vjepa" | "videomae" | "salt" | "salt_teacher": {
          "label": "V-JEPA",
          "points": [{"encoder": "vjepa_step30", "flops": 1.9e12, "step": 30,
                      "top1": {protocol: {task: fraction}},   # curve_top1, and the attentive top1 at the ends
                      "feature_rank": 70.2}]  # RankMe logged nearest before that step (null for random init)
        }                                 # salt: the student's points, its FLOPs counted after the whole teacher
      },
      "plots": ["runs/demo/loss_curves.png", ...]
    }

Accuracies are fractions (0..1); the Markdown tables show them in percent.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from videojepa.encoder_io import resolve_encoder_path
from videojepa.train.logger import read_metrics
from videojepa.train.run_dir import snapshot_path
from videojepa.utils.files import write_json_and_markdown

SCHEMA = "videojepa.demo/2"


class DemoRun(BaseModel):
    """One pretraining run of the demo (results.json `runs`)."""

    model_config = ConfigDict(extra="forbid")
    method: str
    dir: str
    steps: int
    budget: float  # FLOPs allotted to this run
    flops_per_step: float
    flops: float  # steps x flops_per_step <= budget
    wall_s: float  # training seconds, summed over the sessions that trained it
    trained_now: bool
    snapshots: list[int]
    feature_reg: float = 0.0  # method.feature_reg: weight of VICReg's penalty (0: as published; absent before)
    health: dict  # the run's last full metrics record


class DemoRow(BaseModel):
    """One row of the table (results.json `rows`)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    label: str
    runs: list[str]
    flops: float
    steps: list[int]
    wall_s: float
    probe: str
    top1: dict[str, dict[str, float]]  # protocol -> task -> fraction
    motion_split: dict[str, dict | None]


class DemoResults(BaseModel):
    """The whole of results.json (module docstring)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_: str = Field(SCHEMA, alias="schema")
    created: str
    settings: dict
    data: dict
    budget: dict
    chance: dict[str, float]
    protocols: list[str]
    curve_protocols: list[str]
    timing: dict
    runs: dict[str, DemoRun]
    probes: dict[str, dict]
    rows: list[DemoRow]
    curves: dict[str, dict]
    plots: list[str] | None = None

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str) -> str:
        if value != SCHEMA:
            raise ValueError(f"schema must be {SCHEMA!r}, got {value!r}")
        return value

    def as_json(self) -> dict:
        data = self.model_dump(mode="json", by_alias=True)
        if data["plots"] is None:
            del data["plots"]
        return data


# the keys every results.json has, and every run and row entry
TOP_KEYS = ("schema", *(k for k, f in DemoResults.model_fields.items() if k != "schema_" and f.is_required()))
RUN_KEYS = tuple(DemoRun.model_fields)
ROW_KEYS = tuple(DemoRow.model_fields)
PROTOCOL_LABELS = {"attentive": "attentive", "linear_frames": "linear (frames)", "knn_frames": "kNN (frames)"}
SPINNING = ("rotate_cw", "rotate_ccw")  # the synthetic motion classes whose label is the rotation sense
SPLIT_LABELS = {
    "spin_vs_translation": "spinning vs translating",
    "rotation_sense": "rotation sense",
    "translation_kind": "which translation",
}

# Curves: (name, label, the runs before it whose whole FLOPs come first, the run whose encoders are probed).
CURVES = (
    ("salt_teacher", "SALT teacher (V-Pixel)", (), "salt_teacher"),
    ("salt", "SALT (student)", ("salt_teacher",), "salt_student"),
    ("vjepa", "V-JEPA", (), "vjepa"),
    ("videomae", "VideoMAE", (), "videomae"),
)

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


def build_results(
    settings, data: dict, budget: dict, runs: dict, probes: dict, chance: dict, timing: dict | None = None
) -> dict:
    """The results.json document from the demo's pieces (see `videojepa.demo.run.run_demo`)."""
    rows = []
    for name, label, names in ROWS:
        probe = names[-1] if names else "random_init"
        confusion = probes[probe].get("confusion", {})
        rows.append(
            {
                "name": name,
                "label": penalty_label(label, [runs[n] for n in names]),
                "runs": list(names),
                "flops": sum(runs[n]["flops"] for n in names),
                "steps": [runs[n]["steps"] for n in names],
                "wall_s": sum(runs[n]["wall_s"] for n in names),
                "probe": probe,
                "top1": probes[probe]["top1"],
                "motion_split": {kind: _split(tasks.get("motion")) for kind, tasks in confusion.items()},
            }
        )
    protocols = list(rows[0]["top1"])
    curve_protocols = list(probes["random_init"].get("curve_top1", {}))
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
        "protocols": protocols,
        "curve_protocols": curve_protocols,
        "timing": {"data_s": data.get("seconds"), **(timing or {})},
        "runs": {name: {k: run.get(k) for k in RUN_KEYS} for name, run in runs.items()},
        "probes": probes,
        "rows": rows,
        "curves": build_curves(runs, probes),
    }


PENALTY = "VICReg"


def penalty_label(label: str, runs: list[dict]) -> str:
    """A method's label with "+ VICReg" when one of its runs trained with the variance-covariance penalty
    (`method.feature_reg` > 0), which none of the published methods uses: the table never calls a penalised
    run by the plain method's name."""
    return f"{label} + {PENALTY}" if any(r.get("feature_reg") for r in runs) else label


def build_curves(runs: dict, probes: dict) -> dict:
    """Accuracy against training FLOPs for each curve of `CURVES`, from the probed snapshots (schema above)."""
    curves = {}
    start = {"encoder": "random_init", "flops": 0.0, "step": 0, "top1": curve_scores(probes["random_init"])}
    for name, label, before, run in CURVES:
        offset = sum(runs[n]["flops"] for n in before)
        points = [{**start, "feature_rank": None, "drift": 0.0}]
        for encoder in sorted((p for p in probes.values() if p.get("run") == run), key=lambda p: p["step"]):
            points.append(
                {
                    "encoder": encoder["name"],
                    "flops": offset + encoder["step"] * runs[run]["flops_per_step"],
                    "step": encoder["step"],
                    "top1": curve_scores(encoder),
                    "feature_rank": rank_at(runs[run]["dir"], encoder["step"]),
                    "drift": weight_drift(runs[run]["dir"], encoder["checkpoint"]),
                }
            )
        curves[name] = {"label": penalty_label(label, [runs[n] for n in (*before, run)]), "points": points}
    return curves


def weight_drift(run_dir: str, encoder: str) -> float | None:
    """How far training moved an encoder: ||W - W0|| / ||W0|| over all its weights, W0 the run's initial
    encoder (its step-0 snapshot; None without one). The V-JEPA encoder is the EMA target, which moves slowly."""
    from safetensors.torch import load_file

    initial = snapshot_path(run_dir, 0)
    if not initial.exists():
        return None
    w0, w = load_file(str(initial)), load_file(str(resolve_encoder_path(encoder)))
    moved = sum(float((w[k].float() - w0[k].float()).pow(2).sum()) for k in w0)
    return (moved / sum(float(v.float().pow(2).sum()) for v in w0.values())) ** 0.5


def curve_scores(probe: dict) -> dict:
    """A curve point's scores: the cheap protocols on the curves' subset of the videos, and for a final encoder
    the table's attentive scores (the attentive probe runs only at the curves' ends)."""
    scores = dict(probe.get("curve_top1", {}))
    if probe.get("final") and "attentive" in probe["top1"]:
        scores["attentive"] = probe["top1"]["attentive"]
    return scores


def rank_at(run_dir: str, step: int) -> float | None:
    """The RankMe of the run's last full metrics record at or before `step` (None when there is none)."""
    logged = [r for r in read_metrics(run_dir, kind="log") if r["step"] <= step and r.get("feature_rank") is not None]
    return logged[-1]["feature_rank"] if logged else None


def _split(confusion: dict | None) -> dict | None:
    return None if not confusion else motion_split(confusion["classes"], confusion["matrix"])


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def markdown_table(results: dict) -> str:
    """A caption, then the table (chance, random init, then every method at the same budget; one column per
    task and protocol), the motion score's split, and the curves' points."""
    b, tasks, protocols = results["budget"], list(results["chance"]), results["protocols"]
    penalised = [r for r in results["runs"].values() if r.get("feature_reg")]
    weights = ", ".join(sorted({f"{r['feature_reg']:g}" for r in penalised}))
    columns = [(t, k) for t in tasks for k in protocols if any(t in r["top1"].get(k, {}) for r in results["rows"])]
    lines = [
        f"Training budget {b['flops']:.3g} FLOPs for every method (= {b['budget_steps']} V-JEPA steps; "
        f"SALT teacher share {b['teacher_share']:g}); probe top-1 (%) on the validation set, best cell of each "
        "probe's grid. attentive: cross-attention pooler over all tokens (the papers' protocol); linear (frames) "
        "and kNN (frames): on each time step's tokens averaged over a coarse grid (they see only what the "
        "encoder put into the token values)."
        + (
            f" + {PENALTY}: trained with VICReg's variance-covariance penalty on the context features "
            f"(method.feature_reg = {weights}), which the published methods do not use."
            if penalised
            else ""
        ),
        "",
        "| method | training FLOPs | steps | wall time | "
        + " | ".join(f"{t} {PROTOCOL_LABELS.get(k, k)}" for t, k in columns)
        + " |",
        "|---" * (4 + len(columns)) + "|",
        "| chance | - | - | - | " + " | ".join(_pct(results["chance"][t]) for t, _ in columns) + " |",
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
        accuracy = " | ".join(_pct(row["top1"].get(k, {}).get(t)) for t, k in columns)
        lines.append(f"| {row['label']} | {flops} | {steps} | {wall} | {accuracy} |")
    split_protocols = [k for k in protocols if any((row.get("motion_split") or {}).get(k) for row in results["rows"])]
    if split_protocols:
        lines += [
            "",
            "The motion score split into its sub-problems (best probe cell, validation clips, %; "
            "rotation sense and which translation among clips put in the right group; chance 50% each "
            "with the default four classes):",
            "",
            "| method | probe | " + " | ".join(SPLIT_LABELS.values()) + " |",
            "|---" * (2 + len(SPLIT_LABELS)) + "|",
        ]
        for row in results["rows"]:
            for k in split_protocols:
                parts = (row.get("motion_split") or {}).get(k) or {}
                cells = " | ".join(_pct(parts.get(part)) for part in SPLIT_LABELS)
                lines.append(f"| {row['label']} | {PROTOCOL_LABELS.get(k, k)} | {cells} |")
    curves = results.get("curves") or {}
    if curves:
        points = [p for c in curves.values() for p in c["points"]]
        kinds = [*(results.get("curve_protocols") or []), "attentive"]
        curve_columns = [(t, k) for k in kinds for t in tasks if any(t in p["top1"].get(k, {}) for p in points)]
        train_videos, val_videos = results["settings"].get("curve_videos") or ("all", "all")
        lines += [
            "",
            "Accuracy against training FLOPs (accuracy_vs_flops.png): every curve starts at the random-init "
            "encoder (0 FLOPs: top-1 in the first row); SALT's student points count the whole teacher first. "
            f"The cheap probes on the first {train_videos} training and {val_videos} validation videos of each "
            "task (every point); the attentive probe on the whole lists, at the curves' ends only. RankMe of the "
            "encoder at that step, and how far training moved its weights (||W - W0|| / ||W0||):",
            "",
            "| curve | step | training FLOPs | "
            + " | ".join(f"{t} {PROTOCOL_LABELS.get(k, k)}" for t, k in curve_columns)
            + " | RankMe | weights moved |",
            "|---" * (5 + len(curve_columns)) + "|",
        ]
        first = next(iter(curves.values()))["points"][0]
        cells = " | ".join(_pct(first["top1"].get(k, {}).get(t)) for t, k in curve_columns)
        lines.append(f"| random init | 0 | 0 | {cells} | - | - |")
        for curve in curves.values():
            for point in curve["points"][1:]:
                cells = " | ".join(_pct(point["top1"].get(k, {}).get(t)) for t, k in curve_columns)
                rank = "-" if point["feature_rank"] is None else f"{point['feature_rank']:.0f}"
                drift = "-" if point.get("drift") is None else f"{100 * point['drift']:.1f}%"
                lines.append(
                    f"| {curve['label']} | {point['step']} | {point['flops']:.3g} | {cells} | {rank} | {drift} |"
                )
    return "\n".join(lines) + "\n"


def check_results(results: dict) -> DemoResults:
    """The typed results; ValueError (pydantic's ValidationError) if `results` does not follow the schema."""
    return DemoResults.model_validate(results)


def write_results(out: str | Path, results: dict | DemoResults) -> tuple[Path, Path]:
    """Write results.json and results.md atomically into `out`; returns their paths."""
    typed = results if isinstance(results, DemoResults) else check_results(results)
    data = typed.as_json()
    return write_json_and_markdown(out, data, markdown_table(data))
