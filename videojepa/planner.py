"""SALT's compute planner: split a FLOPs budget between the teacher and student stages, and price
V-JEPA at the same budget (what `videojepa flops --budget` and the demo use).

Steps always round down, so a plan never spends more than its budget.
"""

from __future__ import annotations

from videojepa.config.loader import stage_config
from videojepa.config.schema import PlanConfig, PretrainConfig, with_method
from videojepa.errors import UserError
from videojepa.methods.accounting import steps_within_budget


def split_budget(
    teacher_cfg: PretrainConfig,
    student_cfg: PretrainConfig,
    budget: float,
    teacher_share: float,
    measured_masks: bool = False,
) -> dict:
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
        raise UserError(
            "the budget planner needs a SALT plan whose first stage is salt_teacher and last "
            f"salt_student (got {teacher_cfg.method.name} ... {student_cfg.method.name})"
        )
    teacher = steps_within_budget(teacher_cfg, budget * teacher_share, "teacher", measured_masks)
    student = steps_within_budget(student_cfg, budget - teacher["flops"], "student", measured_masks)
    teacher["share"], student["share"] = teacher_share, 1 - teacher_share
    return {
        "budget": budget,
        "teacher_share": teacher_share,
        "stages": [teacher, student],
        "salt_flops": teacher["flops"] + student["flops"],
    }


def allocate_budget(plan: PlanConfig, budget: float, teacher_share: float, measured_masks: bool = False) -> dict:
    """Split a FLOPs budget between SALT's stages (`split_budget`), and price V-JEPA at the same budget.

    `plan` is a SALT plan (first stage the teacher, last the student, e.g. paper/salt_vitl).
    V-JEPA (the student's config with method vjepa, i.e. same encoder, predictor, masks and batch)
    gets all of the budget. Steps are rounded down, so the spent FLOPs never exceed the budget.
    """
    teacher_cfg, student_cfg = stage_config(plan.stages[0]), stage_config(plan.stages[-1])
    salt = split_budget(teacher_cfg, student_cfg, budget, teacher_share, measured_masks)
    vjepa_cfg = with_method(student_cfg, "vjepa")
    vjepa = {**steps_within_budget(vjepa_cfg, budget, "vjepa", measured_masks), "share": 1.0}
    return {**salt, "stages": salt["stages"] + [vjepa], "vjepa_flops": vjepa["flops"]}
