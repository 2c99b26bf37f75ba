"""Frozen evaluation and feature extraction: probes, probe grids, multi-clip protocol, feature cache.

Extension points: probe kinds (`probes.register_probe`), evaluation protocols (`tasks.register_evaluation`;
classification is `classification`); `encoders` holds what evaluation and fine-tuning share (loading the
encoder, fitting a task's clip protocol to its card, labels, accuracy); `probe_file` is a trained attentive
probe on disk (with its card: what `videojepa.load_classifier` joins to an encoder); `evaluate` scores a
classifier as it is (`videojepa evaluate`); `lowshot` draws class-balanced low-shot splits.

from videojepa.eval import ProbeConfig, run_probe          # `videojepa probe CONFIG`
from videojepa.eval import extract_features                # `videojepa extract ...`
"""

from videojepa.eval.config import ProbeConfig
from videojepa.eval.extract import extract_features
from videojepa.eval.features import FeatureSet, FeatureSource, encode, extract_dataset, pool
from videojepa.eval.grid import ProbeGrid, grid_cells
from videojepa.eval.probes import (
    AttentiveProbe,
    KNNClassifier,
    LinearProbe,
    Probe,
    build_probe,
    get_probe_kind,
    list_probe_kinds,
    register_probe,
)
from videojepa.eval.protocol import eval_logits, per_view, training_batch
from videojepa.eval.runner import run_probe
from videojepa.eval.tasks import Evaluation, TaskResult, list_evaluations, register_evaluation

__all__ = [
    "ProbeConfig",
    "run_probe",
    "extract_features",
    "FeatureSet",
    "FeatureSource",
    "encode",
    "extract_dataset",
    "pool",
    "ProbeGrid",
    "grid_cells",
    "Probe",
    "AttentiveProbe",
    "LinearProbe",
    "KNNClassifier",
    "build_probe",
    "register_probe",
    "get_probe_kind",
    "list_probe_kinds",
    "Evaluation",
    "TaskResult",
    "register_evaluation",
    "list_evaluations",
    "per_view",
    "eval_logits",
    "training_batch",
]
