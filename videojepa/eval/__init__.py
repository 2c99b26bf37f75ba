"""Frozen evaluation and feature extraction: probes, probe grids, multi-clip protocol, feature cache.

from videojepa.eval import ProbeConfig, run_probe          # `videojepa probe CONFIG`
from videojepa.eval import extract_features                # `videojepa extract ...`
"""

from videojepa.eval.config import ProbeConfig
from videojepa.eval.extract import extract_features
from videojepa.eval.features import FeatureSet, FeatureSource, encode, extract_dataset, pool
from videojepa.eval.grid import ProbeGrid, grid_cells
from videojepa.eval.probes import AttentiveProbe, KNNClassifier, LinearProbe, Probe, build_probe
from videojepa.eval.protocol import eval_logits, per_view, training_batch
from videojepa.eval.runner import run_probe

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
    "per_view",
    "eval_logits",
    "training_batch",
]
