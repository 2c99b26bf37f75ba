"""Probe results: `results.json` (the typed `ProbeResults`) and a Markdown table, written into the run directory.

results.json (schema "videojepa.probe/1"; each task entry is its evaluation protocol's typed result, and
`evaluation` names the protocol, `videojepa.eval.tasks`):

    {
      "schema": "videojepa.probe/1",
      "created": "2025-01-01T12:00:00+00:00",        # UTC, ISO 8601
      "checkpoint": "runs/vjepa" | "none",
      "encoder": {"name", "embed_dim", "depth", "num_heads", "patch_size", "tubelet_size", "pos_embed",
                  "params", "random_init": bool},
      "probe": {"kind", "heads", "blocks", "queries", "layers", "feature_dim", "precision", "test_views",
                "knn_k", "knn_temperature"},                        # kNN keys only for kind knn
      "optim": {"epochs", "batch_size", "lr": [...], "weight_decay": [...], "betas", "grad_clip",
                "final_weight_decay", "decay_norms_and_biases"},    # absent for knn
      "features": {"cache", "augmentations", "dtype"},
      "augment": {"random_clips", "views", "randaugment_n", ...},   # the training views; absent for knn
      "tasks": [
        {
          "name": "appearance", "evaluation": "classification", "train": path, "val": path,
          "num_classes": 4, "num_train": 360, "num_val": 120,   # num_val: validation videos scored
          "protocol": {"frames_per_clip", "frame_step", "fps", "num_clips", "num_views", "crop_size",
                       "test_views": "official" | "resized", "eval_resize_ratio",  # the test views' short side
                       "average": "softmax" | "logits",        # how the views' scores are combined
                       "train_views", "training"},             # training views per clip; how they were drawn
          "chance": 0.25,                          # 1 / num_classes
          "majority": 0.27,                        # share of the most frequent class in val
          "top1": 0.93,                            # best cell's validation top-1 (fraction, 0..1)
          "top5": 1.0 | null,                      # null when num_classes <= 5
          "best": {"lr", "weight_decay"} | {"k", "temperature"},
          "cells": [                               # every probe of the grid, lr-major
            {"lr", "weight_decay", "top1", "top5", "val_loss", "train_loss"}
                                                     # knn: {"k", "temperature", "top1", "top5"}
          ],
          "classes": ["rotate_cw", ...],           # label names in label order (numbers when the data has none)
          "confusion": [[...], ...],               # best cell, validation videos: [true label][predicted label]
          "bad_files": {"train": 0, "val": 0},     # unreadable files: train ones replaced by other files (as
                                                   # found while decoding), val ones excluded from the score
          "val_excluded": [path, ...],             # the excluded validation files
          "probe_file": path | null,               # the best attentive probe, a classifier with its encoder
                                                   # (`videojepa evaluate`); null for other kinds, random init
          "cached": {"train": bool, "val": bool},  # features read from an existing cache file
          "top1_std": float | null,                # low-shot: the best setting's std over the splits
          "low_shot": {"fraction", "splits", "seeds", "num_train", "top1": [per split], "top1_mean",
                       "top1_std"} | null,         # with features.train_fraction: then top1 and every cell's
                                                   # scores are means over the splits, cells list "top1_splits",
                                                   # and the confusion matrix sums the splits
          "seconds": {"features", "train", "eval"}
        }
      ],
      "seconds": 12.3,                             # the whole run
      "config": {...}                              # the resolved config
    }

results.md: the encoder and probe, then each protocol's lines for its tasks (classification: one row per task,
top-1 in %, chance, the best cell's settings, the clip protocol; then the full grid of each task).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator

from videojepa.eval.encoders import EncoderInfo
from videojepa.eval.tasks import TaskResult, get_evaluation, task_result
from videojepa.utils.files import write_json_and_markdown

SCHEMA = "videojepa.probe/1"


class ProbeResults(BaseModel):
    """The whole of results.json (module docstring)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_: str = Field(SCHEMA, alias="schema")
    created: str  # UTC, ISO 8601
    checkpoint: str
    encoder: EncoderInfo
    probe: dict  # kind, heads, queries, layers, feature_dim, precision (+ frame_grid, input; knn_k, knn_temperature)
    optim: dict | None = None  # a trained probe's: epochs, batch_size, lr, weight_decay, betas
    features: dict  # cache, augmentations, dtype
    augment: dict | None = None  # a trained probe's training views (the config's augment section)
    tasks: list[SerializeAsAny[TaskResult]]
    seconds: float
    config: dict

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str) -> str:
        if value != SCHEMA:
            raise ValueError(f"schema must be {SCHEMA!r}, got {value!r}")
        return value

    @field_validator("tasks", mode="before")
    @classmethod
    def _typed_tasks(cls, tasks: list) -> list[TaskResult]:
        return [task_result(t) for t in tasks]

    def as_json(self) -> dict:
        data = self.model_dump(mode="json", by_alias=True)
        for optional in ("optim", "augment"):
            if data[optional] is None:
                del data[optional]
        return data


# the keys every results.json has, and every task entry (its protocol adds its own)
TOP_KEYS = ("schema", *(k for k, f in ProbeResults.model_fields.items() if k != "schema_" and f.is_required()))
TASK_KEYS = tuple(TaskResult.model_fields)


def markdown_table(results: dict) -> str:
    """The encoder and probe, then each evaluation protocol's lines for its tasks."""
    enc, probe = results["encoder"], results["probe"]
    name = enc.get("name") or f"vit {enc['embed_dim']}x{enc['depth']}"
    lines = [
        f"Encoder: {results['checkpoint']} ({name}{', random init' if enc.get('random_init') else ''}); "
        f"probe: {probe['kind']}, layers {probe['layers']}"
        + (f", {probe['heads']} heads" if probe["kind"].startswith("attentive") else "")
        + "\n",
    ]
    protocols = list(dict.fromkeys(t.get("evaluation", "classification") for t in results["tasks"]))
    for i, protocol in enumerate(protocols):
        tasks = [t for t in results["tasks"] if t.get("evaluation", "classification") == protocol]
        lines += ([""] if i else []) + get_evaluation(protocol).markdown(results, tasks)
    return "\n".join(lines) + "\n"


def check_results(results: dict) -> ProbeResults:
    """The typed results; ValueError (pydantic's ValidationError) if `results` does not follow the schema."""
    return ProbeResults.model_validate(results)


def write_results(run_dir: str | Path, results: ProbeResults | dict) -> tuple[Path, Path]:
    """Write results.json and results.md atomically; returns their paths."""
    typed = results if isinstance(results, ProbeResults) else check_results(results)
    data = typed.as_json()
    return write_json_and_markdown(run_dir, data, markdown_table(data))
