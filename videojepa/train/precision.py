"""`train.precision: auto` resolved for one run, and recorded in it.

A new run resolves `auto` where it starts (`videojepa.utils.precision.resolve_precision`: bf16 on CUDA,
bf16 on a CPU only where bf16 was measured faster than fp32) and saves the resolved precision in its
config.yaml. Resuming with `auto` keeps the precision recorded in the run, whatever the machine it resumes on
measures: changing it would silently change the run's trajectory. An explicit precision that differs from
the recorded one is refused like any other conflicting setting (`Trainer.prepare_run_dir`); to change it,
start a new run directory. Under torchrun on CPUs every rank takes rank 0's choices, so all ranks compute alike.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from videojepa.utils.precision import (
    BF16_MIN_SPEEDUP,
    cache_file,
    cpu_attention,
    cpu_choices,
    resolve_precision,
    set_cpu_attention,
)


def recorded_precision(run_dir: Path) -> str | None:
    """The precision a run directory's config.yaml records (None: no run there, or none recorded)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return None
    try:
        saved = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None  # the trainer reports an unreadable run directory itself
    value = (saved.get("train") or {}).get("precision") if isinstance(saved, dict) else None
    return value if value in ("fp32", "bf16", "fp16") else None


def resolve_train_precision(cfg, device: torch.device):
    """(`cfg` with `train.precision: auto` replaced by the precision this run trains in, a line that says how it
    was chosen). `cfg` is copied when it changes, returned as it is when its precision is explicit."""
    requested = cfg.train.precision
    if requested != "auto":
        precision, how = requested, "as set"
    elif (recorded := recorded_precision(cfg.run.dir)) is not None:
        precision, how = recorded, f"auto: recorded in {cfg.run.dir}/config.yaml (a run keeps its precision)"
    else:
        precision = resolve_precision("auto", device)
        how = "auto: bf16 on CUDA" if device.type == "cuda" else f"auto: {cpu_summary()}"
    dist = torch.distributed
    grouped = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if requested == "auto" and device.type == "cpu" and grouped:
        attention = cpu_choices()["attention"] if precision == "bf16" else None
        shared = [precision, attention]
        dist.broadcast_object_list(shared, src=0)  # rank 0's choices for every rank
        precision, attention = shared
        if attention is not None:
            set_cpu_attention(attention)
    if device.type == "cpu" and precision == "bf16":  # the kernel probe (first use here) runs now, not in a step
        how += f"; bf16 attention on this CPU: {cpu_attention()}"
    note = f"train.precision {precision} ({how})"
    if precision == requested:
        return cfg, note
    cfg = cfg.model_copy(deep=True)
    cfg.train.precision = precision
    return cfg, note


def cpu_summary() -> str:
    choices = cpu_choices()
    return (
        f"bf16 matmul {choices['bf16_over_fp32_speed']:.2f}x the fp32 speed on {choices['machine']} "
        f"(bf16 needs {BF16_MIN_SPEEDUP}x; measured once, cached in {cache_file()})"
    )
