"""FLOPs accountant (SPEC section 9).

Paper rule, attention ignored: a trained network costs 6*N*D per step, a frozen forward-only
network 2*N*D, N = non-embedding parameters (the encoder's tubelet embedding is left out, as
in Kaplan et al. 2020), D = tokens it processes in that step. With batch B, n tokens
per clip and M mask generators whose context/target lengths are c_g/t_g:

    encoder (trained)          D = sum_g c_g * B          (c_g = (1 - 0.9) n by the paper's rule)
    predictor/decoder (trained) D = sum_g (c_g + t_g) * B  (= M n B)
    target/teacher (frozen)    D = n * B                  (vjepa's EMA copy, salt_student's teacher)

`flops_with_attention` adds the attention products (QK^T and AV, 4 * seq * width FLOPs per
token per layer forward, x3 when trained), which matter most for the predictor's full-length
sequences. `measured_masks=True` replaces the paper's 0.9 masking ratio with the lengths the
configured mask sampler really produces.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from videojepa.config.schema import PlanConfig, PretrainConfig
from videojepa.errors import UserError

PAPER_MASK_RATIO = 0.9


@dataclass
class Component:
    name: str
    params: int
    tokens: float  # D: tokens processed per step
    trained: bool
    attention_flops_per_token: float  # forward, summed over layers

    @property
    def flops(self) -> float:
        return (6 if self.trained else 2) * self.params * self.tokens

    @property
    def attention_flops(self) -> float:
        return (3 if self.trained else 1) * self.attention_flops_per_token * self.tokens


def _attention_per_token(depth: int, width: int, seq: float) -> float:
    return 4.0 * seq * width * depth


def _encoder_arch(name: str, cfg: PretrainConfig) -> tuple[int, int, int]:
    from videojepa.models.registry import ARCHITECTURES, count_parameters

    arch = ARCHITECTURES[name]
    params = count_parameters(name, non_embedding=True, patch_size=cfg.model.patch_size, tubelet_size=cfg.model.tubelet_size,
                              pos_embed=cfg.model.pos_embed)
    return params, arch["embed_dim"], arch["depth"]


def _head_params(cfg: PretrainConfig, in_dim: int, out_dim: int | None, pixel: bool) -> int:
    from videojepa.models.predictor import PixelDecoder, Predictor

    p = cfg.predictor
    kwargs = dict(embed_dim=p.embed_dim, depth=p.depth, num_heads=p.num_heads, mlp_ratio=p.mlp_ratio,
                  num_mask_tokens=len(cfg.masks), pos_embed=cfg.model.pos_embed)
    with torch.device("meta"):
        if pixel:
            net = PixelDecoder(in_dim, cfg.model.tubelet_size, cfg.model.patch_size, **kwargs)
        else:
            net = Predictor(in_dim, out_dim, **kwargs)
    return sum(t.numel() for t in net.parameters())


def teacher_model_name(cfg: PretrainConfig) -> str:
    teacher = cfg.method.teacher
    if teacher.model:
        return teacher.model
    if teacher.checkpoint:
        from videojepa.encoder_io import read_metadata

        name = read_metadata(teacher.checkpoint)["arch"].get("name")
        if name:
            return name
    raise UserError("method.teacher.model: set the teacher architecture to count its FLOPs "
                    f"(teacher checkpoint {teacher.checkpoint!r} given without it)")


def mask_lengths(cfg: PretrainConfig, measured: bool, batches: int = 20, seed: int = 0) -> list[tuple[float, float]]:
    """(context, target) tokens per clip for each mask generator."""
    from videojepa.masks import build_mask_generators, mask_statistics, token_grid

    n = math.prod(token_grid(cfg))
    if not measured:
        return [((1 - PAPER_MASK_RATIO) * n, PAPER_MASK_RATIO * n) for _ in cfg.masks]
    stats = mask_statistics(build_mask_generators(cfg), min(cfg.train.batch_size, 64), batches, seed)
    return [(s["context_tokens"], s["target_tokens"]) for s in stats]


def step_components(cfg: PretrainConfig, measured_masks: bool = False,
                    lengths: list[tuple[float, float]] | None = None) -> list[Component]:
    """What one optimiser step of this pretraining config computes.

    `lengths` gives (context, target) tokens per clip for each mask generator directly (e.g.
    those of the batch being timed); otherwise they come from the paper's rule or the sampler.
    """
    from videojepa.masks import token_grid

    batch, n = cfg.train.batch_size, math.prod(token_grid(cfg))
    lengths = lengths or mask_lengths(cfg, measured_masks)
    enc_params, width, depth = _encoder_arch(cfg.model.name, cfg)
    p = cfg.predictor
    method = cfg.method.name

    encoder = Component("encoder", enc_params, sum(c for c, _ in lengths) * batch, True,
                        sum(_attention_per_token(depth, width, c) * c for c, _ in lengths) / sum(c for c, _ in lengths))
    head_tokens = sum(c + t for c, t in lengths) * batch
    head_attention = sum(_attention_per_token(p.depth, p.embed_dim, c + t) * (c + t) for c, t in lengths)
    head_attention /= sum(c + t for c, t in lengths)
    parts = [encoder]
    if method in ("salt_teacher", "videomae"):
        parts.append(Component("pixel_decoder", _head_params(cfg, width, None, pixel=True), head_tokens, True,
                               head_attention))
        return parts
    if method == "vjepa":
        target_params, target_width, target_depth, target_name = enc_params, width, depth, "target_encoder"
    else:  # salt_student
        target_params, target_width, target_depth = _encoder_arch(teacher_model_name(cfg), cfg)
        target_name = "teacher"
    parts.append(Component("predictor", _head_params(cfg, width, target_width, pixel=False), head_tokens, True,
                           head_attention))
    parts.append(Component(target_name, target_params, n * batch, False,
                           _attention_per_token(target_depth, target_width, n)))
    return parts


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
        "components": [{**asdict(c), "flops_per_step": c.flops, "attention_flops_per_step": c.attention_flops}
                       for c in parts],
    }


def flops_report(config: PretrainConfig | PlanConfig, measured_masks: bool = False) -> dict:
    """The `videojepa flops --json` document for a pretraining or a plan config."""
    from videojepa.config.loader import stage_config

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


def steps_within_budget(cfg: PretrainConfig, budget: float, name: str | None = None,
                        measured_masks: bool = False) -> dict:
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
    return {"name": name, "method": cfg.method.name, "budget": budget, "steps": steps,
            "flops_per_step": per_step, "flops": steps * per_step}


def split_budget(teacher_cfg: PretrainConfig, student_cfg: PretrainConfig, budget: float, teacher_share: float,
                 measured_masks: bool = False) -> dict:
    """Split a FLOPs budget between SALT's teacher and student configs.

    The teacher gets `teacher_share` of the budget, the student what the teacher left (so the
    rounding of the teacher's steps goes to the student); steps round down, so the total never
    exceeds the budget and falls short of it by less than one student step.
    """
    if not 0.0 < teacher_share < 1.0:
        raise UserError(f"--teacher-share must be between 0 and 1, got {teacher_share}")
    if budget <= 0:
        raise UserError(f"--budget must be positive, got {budget}")
    if (teacher_cfg.method.name, student_cfg.method.name) != ("salt_teacher", "salt_student"):
        raise UserError("the budget planner needs a SALT plan whose first stage is salt_teacher and last "
                        f"salt_student (got {teacher_cfg.method.name} ... {student_cfg.method.name})")
    teacher = steps_within_budget(teacher_cfg, budget * teacher_share, "teacher", measured_masks)
    student = steps_within_budget(student_cfg, budget - teacher["flops"], "student", measured_masks)
    teacher["share"], student["share"] = teacher_share, 1 - teacher_share
    return {"budget": budget, "teacher_share": teacher_share, "stages": [teacher, student],
            "salt_flops": teacher["flops"] + student["flops"]}


def allocate_budget(plan: PlanConfig, budget: float, teacher_share: float, measured_masks: bool = False) -> dict:
    """Split a FLOPs budget between SALT's stages (`split_budget`), and price V-JEPA at the same budget.

    `plan` is a SALT plan (first stage the teacher, last the student, e.g. paper/salt_vitl).
    V-JEPA (the student's config with method vjepa, i.e. same encoder, predictor, masks and batch)
    gets all of the budget. Steps are rounded down, so the spent FLOPs never exceed the budget.
    """
    from videojepa.config.loader import stage_config

    teacher_cfg, student_cfg = stage_config(plan.stages[0]), stage_config(plan.stages[-1])
    salt = split_budget(teacher_cfg, student_cfg, budget, teacher_share, measured_masks)
    vjepa_cfg = student_cfg.model_copy(update={"method": student_cfg.method.model_copy(update={"name": "vjepa"})})
    vjepa = {**steps_within_budget(vjepa_cfg, budget, "vjepa", measured_masks), "share": 1.0}
    return {**salt, "stages": salt["stages"] + [vjepa], "vjepa_flops": vjepa["flops"]}
