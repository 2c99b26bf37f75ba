"""Fine-tuning results: `results.json` (the typed `FinetuneResults`) and a Markdown summary, written into the run
directory.

results.json (schema "videojepa.finetune/1"):

    {
      "schema": "videojepa.finetune/1", "created": "2025-01-01T12:00:00+00:00",
      "checkpoint": "runs/vjepa" | "none",
      "encoder": {"name", "embed_dim", "depth", "num_heads", "patch_size", "tubelet_size", "pos_embed",
                  "params", "random_init"},
      "train": path, "val": path, "num_classes": 4, "classes": [...], "num_train": 360, "num_val": 120,
      "steps": 300,                                  # optimiser steps trained
      "protocol": {"frames_per_clip", "frame_step", "fps", "crop_size"},
      "chance": 0.25, "majority": 0.27,
      "checkpoints": {
        "best": {"step": 200, "protocols": {       # best: highest one-view validation top-1 at a checkpoint
          "1x1": {"segments": 1, "crops": 1, "top1", "top5" (null for <= 5 classes), "confusion" ([true][pred],
                  only for <= 20 classes), "num_val", "excluded", "seconds"},
          "5x3": {...}}},                            # eval.num_segments x eval.num_crops, logits averaged
        "last": {...}
      },
      "seconds": {"train", "total"},
      "config": {...}                                # the resolved config
    }
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from videojepa.eval.encoders import EncoderInfo
from videojepa.utils.files import write_json_and_markdown

SCHEMA = "videojepa.finetune/1"


class ViewScores(BaseModel):
    """One classifier scored with one view protocol (segments x crops)."""

    model_config = ConfigDict(extra="forbid")
    segments: int
    crops: int
    top1: float = Field(ge=0.0, le=1.0)
    top5: float | None  # None for 5 classes or fewer
    confusion: list[list[int]] | None = None  # [true][predicted], for 20 classes or fewer
    num_val: int
    excluded: int
    seconds: float


class ClassifierScores(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: int
    protocols: dict[str, ViewScores]  # "1x1", "<segments>x<crops>"


class FinetuneResults(BaseModel):
    """The whole of results.json (module docstring)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_: str = Field(SCHEMA, alias="schema")
    created: str
    checkpoint: str
    encoder: EncoderInfo
    train: str
    val: str
    num_classes: int
    classes: list[str]
    num_train: int
    num_val: int
    steps: int
    protocol: dict  # frames_per_clip, frame_step, fps, crop_size
    chance: float
    majority: float
    checkpoints: dict[str, ClassifierScores]  # best, last
    seconds: dict[str, float]  # train, total
    config: dict

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str) -> str:
        if value != SCHEMA:
            raise ValueError(f"schema must be {SCHEMA!r}, got {value!r}")
        return value

    @field_validator("checkpoints")
    @classmethod
    def _best_and_last(cls, checkpoints: dict) -> dict:
        missing = [k for k in ("best", "last") if k not in checkpoints]
        if missing:
            raise ValueError(f"results miss keys: {', '.join(f'checkpoints.{k}' for k in missing)}")
        return checkpoints

    def as_json(self) -> dict:
        data = self.model_dump(mode="json", by_alias=True)
        for entry in data["checkpoints"].values():  # no confusion matrix for many classes: the key is absent
            for scores in entry["protocols"].values():
                if scores["confusion"] is None:
                    del scores["confusion"]
        return data


TOP_KEYS = ("schema", *(k for k, f in FinetuneResults.model_fields.items() if k != "schema_" and f.is_required()))


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def markdown_table(results: dict) -> str:
    enc, p = results["encoder"], results["protocol"]
    name = enc.get("name") or f"vit {enc['embed_dim']}x{enc['depth']}"
    step = f"{p['fps']:g} fps" if p.get("fps") else str(p["frame_step"])
    lines = [
        f"Fine-tuned: {results['checkpoint']} ({name}{', random init' if enc.get('random_init') else ''}); "
        f"{results['num_classes']} classes, chance {_pct(results['chance'])}%, {results['steps']} steps, "
        f"clips {p['frames_per_clip']} x {step} at {p['crop_size']} px\n",
        "| classifier | step | views (segments x crops) | top-1 | top-5 | val videos |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in results["checkpoints"].items():
        for key, s in entry["protocols"].items():
            lines.append(
                f"| {name} | {entry['step']} | {key} | {_pct(s['top1'])} | {_pct(s['top5'])} | {s['num_val']} |"
            )
    best = results["checkpoints"]["best"]["protocols"]
    key = list(best)[-1]
    if "confusion" in best[key]:
        classes = results["classes"]
        lines += [
            "",
            f"Confusion matrix of best, {key} views (rows: true class, columns: predicted):",
            "",
            "| true \\ predicted | " + " | ".join(classes) + " |",
            "|---" * (len(classes) + 1) + "|",
        ]
        lines += [
            f"| {c} | " + " | ".join(str(v) for v in row) + " |"
            for c, row in zip(classes, best[key]["confusion"], strict=True)
        ]
    return "\n".join(lines) + "\n"


def check_results(results: dict) -> FinetuneResults:
    """The typed results; ValueError (pydantic's ValidationError) if `results` does not follow the schema."""
    return FinetuneResults.model_validate(results)


def write_results(run_dir: str | Path, results: FinetuneResults | dict) -> tuple[Path, Path]:
    """Write results.json and results.md atomically; returns their paths."""
    typed = results if isinstance(results, FinetuneResults) else check_results(results)
    data = typed.as_json()
    return write_json_and_markdown(run_dir, data, markdown_table(data))
