"""SALT stage 2: a fresh student + predictor regress a FROZEN teacher's layer-normed features.

The teacher comes from any encoder file `load_encoder` accepts (a stage-1 run directory, an
exported or converted encoder); its width may differ from the student's since the predictor
outputs the teacher's width. It stays in eval mode, under no_grad, outside the optimiser.
"""
from __future__ import annotations

import warnings

import torch

from videojepa.encoder_io import load_encoder
from videojepa.errors import UserError
from videojepa.methods.base import Method, build_encoder, build_head, mean_over_masks
from videojepa.methods.losses import channel_std, gather_tokens, latent_loss, normalize_features
from videojepa.models.registry import create_model


def build_teacher(cfg) -> torch.nn.Module:
    teacher_cfg = cfg.method.teacher
    if teacher_cfg.checkpoint:
        teacher = load_encoder(teacher_cfg.checkpoint)
    else:
        warnings.warn(f"method.teacher.checkpoint is not set: the student learns from a RANDOM-INIT frozen "
                      f"{teacher_cfg.model} teacher", stacklevel=2)
        teacher = create_model(teacher_cfg.model, patch_size=cfg.model.patch_size,
                               tubelet_size=cfg.model.tubelet_size, pos_embed=cfg.model.pos_embed)
    if (teacher.patch_size, teacher.tubelet_size) != (cfg.model.patch_size, cfg.model.tubelet_size):
        raise UserError(f"method.teacher.checkpoint: the teacher tokenises clips with patch {teacher.patch_size} / "
                        f"tubelet {teacher.tubelet_size}, the student with model.patch_size={cfg.model.patch_size} / "
                        f"model.tubelet_size={cfg.model.tubelet_size}; they must match so tokens align")
    return teacher.requires_grad_(False).eval()


class SALTStudent(Method):
    name = "salt_student"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.encoder = build_encoder(cfg)
        self.teacher = build_teacher(cfg)
        self.predictor = build_head(cfg, self.encoder.embed_dim, self.teacher.embed_dim)

    def frozen_modules(self):
        return [self.teacher]

    def forward(self, video, masks):
        with torch.no_grad():  # once per clip, shared by every mask
            target = normalize_features(self.teacher(video))
        tokens, grid = self.encoder.embed(video)
        losses = []
        for g, m in enumerate(masks):
            context = self.encoder.forward_tokens(tokens, grid, keep=m.context)
            pred = self.predictor(context, m.context, m.target, grid, mask_index=g)
            losses.append(latent_loss(pred, gather_tokens(target, m.target), self.cfg.method.loss_exponent))
        metrics = {f"loss_mask{g}": l.detach() for g, l in enumerate(losses)}
        metrics["target_std"] = channel_std(target)
        metrics["pred_std"] = channel_std(pred)
        return mean_over_masks(losses), metrics
