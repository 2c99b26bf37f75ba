"""Frozen evaluation of an encoder on a set of tasks: what `videojepa probe CONFIG` runs.

    from videojepa.config import load_config
    from videojepa.eval import ProbeConfig, run_probe
    results = run_probe(load_config("demo/probe", ["probe.checkpoint=runs/vjepa"], schema=ProbeConfig))

The orchestrator: load the encoder once (`encoders.load_task_encoder`), resolve each task's clip protocol (the
keys left at their defaults come from the encoder card), hand each task to its evaluation protocol
(`tasks[].evaluation`, default classification: `classification.Classification`; the registry is
`tasks`), which builds its datasets first, so that every task's inputs are checked before any feature is
computed; then run them and write results.json and results.md (`report`) into `run.dir`, next to the
resolved config.yaml.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from videojepa.config.loader import save_config, to_dict
from videojepa.eval import classification  # noqa: F401 - registers the classification protocol
from videojepa.eval.config import ProbeConfig
from videojepa.eval.encoders import EncoderInfo, encoder_protocol, load_task_encoder
from videojepa.eval.features import FeatureSource, prepare_encoder
from videojepa.eval.probes import get_probe_kind, probe_heads
from videojepa.eval.report import ProbeResults, write_results
from videojepa.eval.tasks import TaskContext, get_evaluation
from videojepa.utils.device import resolve_device
from videojepa.utils.precision import resolve_precision


def probe_encoder(cfg: ProbeConfig) -> tuple[torch.nn.Module, EncoderInfo, dict]:
    """The frozen encoder (in the probe's precision, on run.device), a description of it for the results, and
    its identity for cache keys."""
    encoder, info, identity = load_task_encoder(cfg.probe.checkpoint, cfg.model, cfg.run.seed)
    encoder = prepare_encoder(encoder, cfg.probe.precision).to(resolve_device(cfg.run.device, "run.device"))
    return encoder, info, identity


def probe_settings(cfg: ProbeConfig, encoder) -> dict:
    """The probe as results.json records it."""
    p, kind = cfg.probe, get_probe_kind(cfg.probe.kind)
    probe = {
        "kind": p.kind,
        "heads": probe_heads(p, encoder),
        "blocks": kind.options.get("self_attn_blocks", p.blocks),
        "queries": p.queries,
        "out_proj": p.out_proj,
        "layers": list(p.layers),
        "feature_dim": encoder.embed_dim * len(p.layers),
        "precision": p.precision,
        "test_views": p.test_views,
    }
    if kind.pools == "frames":
        probe.update(frame_grid=p.frame_grid, input=kind.input(p.frame_grid))
    if not kind.trains:
        probe.update(knn_k=p.knn_k, knn_temperature=p.knn_temperature)
    return probe


def resolve_probe_precision(cfg: ProbeConfig) -> None:
    """`probe.precision: auto` replaced, in place, by what it is on `run.device` here (bf16 on CUDA, the measured
    choice on a CPU), so that config.yaml, results.json and the feature cache keys record the precision used."""
    cfg.probe.precision = resolve_precision(cfg.probe.precision, resolve_device(cfg.run.device, "run.device"))


def run_probe(cfg: ProbeConfig, log: Callable[[str], None] | None = print, source: FeatureSource | None = None) -> dict:
    """Evaluate the configured encoder on every task; writes results into run.dir and returns them.
    `source` reads and encodes the clips (default: a fresh `FeatureSource`; pass one made with
    `keep_clips=True` to several calls to decode their videos once)."""
    log = log or (lambda _: None)
    start = time.perf_counter()
    run_dir = Path(cfg.run.dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolve_probe_precision(cfg)
    save_config(cfg, run_dir / "config.yaml")
    encoder, info, identity = probe_encoder(cfg)
    context = TaskContext(cfg, encoder, identity, source or FeatureSource(), log)
    given = cfg.given_keys()
    tasks = []
    for task, data in cfg.task_list():
        data, taken = encoder_protocol(data, encoder.card, lambda key: f"data.{key}" in given or key in task.data)
        if taken:
            log(f"task {task.name}: from the encoder card: " + ", ".join(f"data.{k}={v}" for k, v in taken.items()))
        tasks.append(get_evaluation(task.evaluation)(context, task, data))
    task_results = [t.run() for t in tasks]
    o = cfg.optim
    results = ProbeResults(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        checkpoint=cfg.probe.checkpoint,
        encoder=info,
        probe=probe_settings(cfg, encoder),
        optim=None
        if not get_probe_kind(cfg.probe.kind).trains
        else {
            "epochs": o.epochs,
            "batch_size": o.batch_size,
            "lr": list(o.lr),
            "weight_decay": list(o.weight_decay),
            "betas": list(o.betas),
            "grad_clip": o.grad_clip,
            "final_weight_decay": o.final_weight_decay,
            "decay_norms_and_biases": o.decay_norms_and_biases,
        },
        features={
            "cache": cfg.features.cache,
            "augmentations": cfg.features.augmentations,
            "dtype": cfg.features.dtype,
        },
        augment=to_dict(cfg.augment) if get_probe_kind(cfg.probe.kind).trains else None,
        tasks=task_results,
        seconds=round(time.perf_counter() - start, 3),
        config=to_dict(cfg),
    )
    write_results(run_dir, results)
    return results.as_json()
