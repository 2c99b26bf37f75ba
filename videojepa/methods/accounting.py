"""The FLOPs of a pretraining config's method: per step, per stage, per plan, and the steps a budget buys.

    flops_report(load_config("paper/salt_vitl"))       # `videojepa flops CONFIG --json`
    steps_within_budget(cfg, 1.2e21)                   # what `videojepa flops --budget` and the demo plan with

The rule and its parts are `videojepa.flops`; each method declares what one of its steps computes
(`Method.flops_components(cfg, shape)`), and this module adds those up for the method a config names.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from videojepa.config.loader import stage_config
from videojepa.config.schema import PlanConfig, PretrainConfig
from videojepa.errors import UserError
from videojepa.flops import PAPER_MASK_RATIO, Component, step_shape
from videojepa.methods.registry import get_method


def step_components(
    cfg: PretrainConfig, measured_masks: bool = False, lengths: list[tuple[float, float]] | None = None
) -> list[Component]:
    """What one optimiser step of this pretraining config computes, as its method declares it (`lengths`:
    see `videojepa.flops.step_shape`)."""
    shape = step_shape(cfg, measured_masks, lengths)
    with torch.device("meta"):  # architectures only: no memory, no time
        return get_method(cfg.method.name).flops_components(cfg, shape)


def stage_flops(cfg: PretrainConfig, name: str | None = None, measured_masks: bool = False) -> dict:
    parts = step_components(cfg, measured_masks)
    steps = cfg.train.steps
    per_step = sum(c.flops for c in parts)
    per_step_attn = sum(c.flops + c.attention_flops for c in parts)
    return {
        "name": name or cfg.method.name,
        "method": cfg.method.name,
        "steps": steps,
        "flops": per_step * steps,
        "flops_with_attention": per_step_attn * steps,
        "flops_per_step": per_step,
        "flops_per_step_with_attention": per_step_attn,
        "components": [
            {**asdict(c), "flops_per_step": c.flops, "attention_flops_per_step": c.attention_flops} for c in parts
        ],
    }


def flops_report(config: PretrainConfig | PlanConfig, measured_masks: bool = False) -> dict:
    """The `videojepa flops --json` document for a pretraining or a plan config."""
    if isinstance(config, PlanConfig):
        stages = [stage_flops(stage_config(s), s.name, measured_masks) for s in config.stages]
    else:
        stages = [stage_flops(config, None, measured_masks)]
    return {
        "stages": stages,
        "total_flops": sum(s["flops"] for s in stages),
        "total_flops_with_attention": sum(s["flops_with_attention"] for s in stages),
        "mask_ratio": "measured" if measured_masks else PAPER_MASK_RATIO,
    }


def steps_within_budget(
    cfg: PretrainConfig, budget: float, name: str | None = None, measured_masks: bool = False
) -> dict:
    """The most optimiser steps of `cfg` whose FLOPs fit in `budget` (never more than the budget).

    Returns {"name", "method", "budget", "steps", "flops_per_step", "flops"}; `flops` = steps x per step.
    """
    name = name or cfg.method.name
    per_step = stage_flops(cfg, name, measured_masks)["flops_per_step"]
    steps = int(budget // per_step)
    # Float division can land one step off either way; settle it on the product actually reported.
    while (steps + 1) * per_step <= budget:
        steps += 1
    while steps > 0 and steps * per_step > budget:
        steps -= 1
    if steps < 1:
        raise UserError(f"a budget of {budget:.3g} FLOPs buys no {name} step ({per_step:.3g} FLOPs each)")
    return {
        "name": name,
        "method": cfg.method.name,
        "budget": budget,
        "steps": steps,
        "flops_per_step": per_step,
        "flops": steps * per_step,
    }
