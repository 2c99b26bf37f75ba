"""SALT stage 2: a fresh student + predictor regress a FROZEN teacher's layer-normed features.

The teacher comes from any encoder file `load_encoder` accepts (a stage-1 run directory, an
exported or converted encoder); its width may differ from the student's since the predictor
outputs the teacher's width. It stays in eval mode, under no_grad, outside the optimiser.
"""

from __future__ import annotations

import warnings

import torch
from pydantic import Field, model_validator

from videojepa.config.base import Section
from videojepa.encoder_io import load_encoder, read_card
from videojepa.errors import ConfigError, UserError
from videojepa.methods.base import build_head, build_method_encoder
from videojepa.methods.masked import LatentConfig, LatentPrediction
from videojepa.methods.registry import register_method
from videojepa.models.registry import create_model, encoder_from_arch, list_models


class TeacherConfig(Section):
    """The frozen teacher encoder."""

    checkpoint: str | None = Field(None, description="encoder checkpoint or run directory")
    model: str | None = Field(None, description="teacher architecture when no checkpoint is given (FLOPs, tests)")
    shard: bool = Field(
        False,
        description="train.parallel=fsdp2: shard the frozen teacher (forward-only FSDP2 "
        "module) instead of replicating it in bf16",
    )


class SALTStudentConfig(LatentConfig):
    teacher: TeacherConfig = TeacherConfig()

    @model_validator(mode="after")
    def _needs_a_teacher(self):
        teacher = self.teacher
        if not (teacher.checkpoint or teacher.model):
            raise ConfigError(
                "method.teacher.checkpoint",
                "salt_student needs a frozen teacher: set "
                "method.teacher.checkpoint (or method.teacher.model for FLOPs accounting)",
            )
        if teacher.model is not None and teacher.model not in list_models():
            raise ConfigError(
                "method.teacher.model", f"unknown model {teacher.model!r}; allowed values: {', '.join(list_models())}"
            )
        return self


def random_teacher(cfg) -> torch.nn.Module:
    m = cfg.model
    return create_model(
        cfg.method.teacher.model, patch_size=m.patch_size, tubelet_size=m.tubelet_size, pos_embed=m.pos_embed
    )


def build_teacher(cfg) -> torch.nn.Module:
    teacher_cfg = cfg.method.teacher
    if teacher_cfg.checkpoint:
        teacher = load_encoder(teacher_cfg.checkpoint)
    else:
        warnings.warn(
            f"method.teacher.checkpoint is not set: the student learns from a RANDOM-INIT frozen "
            f"{teacher_cfg.model} teacher",
            stacklevel=2,
        )
        teacher = random_teacher(cfg)
    if (teacher.patch_size, teacher.tubelet_size) != (cfg.model.patch_size, cfg.model.tubelet_size):
        raise UserError(
            f"method.teacher.checkpoint: the teacher tokenises clips with patch {teacher.patch_size} / "
            f"tubelet {teacher.tubelet_size}, the student with model.patch_size={cfg.model.patch_size} / "
            f"model.tubelet_size={cfg.model.tubelet_size}; they must match so tokens align"
        )
    return teacher.requires_grad_(False).eval()


@register_method
class SALTStudent(LatentPrediction):
    name = "salt_student"
    networks = {"encoder": "trained", "predictor": "trained", "teacher": "frozen"}
    target_attr = "teacher"
    config_section = SALTStudentConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        self.encoder = build_method_encoder(cfg)
        self.teacher = build_teacher(cfg)
        self.predictor = build_head(cfg, self.encoder.embed_dim, self.teacher.embed_dim)

    @classmethod
    def shard_frozen(cls, cfg) -> bool:
        return cfg.method.teacher.shard

    @classmethod
    def target_architecture(cls, cfg):
        """The teacher's network (weights not loaded): from method.teacher.model, else its file's metadata."""
        if cfg.method.teacher.model:
            return random_teacher(cfg)
        return encoder_from_arch(read_card(cfg.method.teacher.checkpoint).arch)

    @classmethod
    def meta_networks(cls, cfg):
        encoder = build_method_encoder(cfg)
        return encoder, build_head(cfg, encoder.embed_dim, cls.target_architecture(cfg).embed_dim)
