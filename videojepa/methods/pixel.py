"""Masked pixel reconstruction: SALT's stage-1 teacher (V-Pixel, multi-block masks) and the
VideoMAE baseline (random tube masks). Same network and loss; the config's masks differ.

Targets are each tubelet's pixels normalised by the tubelet's own mean and std (`method.pixel_norm:
tubelet`, VideoMAE's), so `target_std` is ~1 by construction; `context_std` (the encoder's features, the
teacher-to-be) is the one to watch. `pixel_norm: none` regresses the pixels as the encoder sees them.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from videojepa.methods.base import build_head, build_method_encoder
from videojepa.methods.losses import pixel_loss, pixel_targets
from videojepa.methods.masked import MaskedConfig, MaskedPrediction
from videojepa.methods.registry import register_method


class PixelConfig(MaskedConfig):
    pixel_norm: Literal["tubelet", "none"] = Field(
        "tubelet",
        description="pixel targets normalised by each tubelet's own mean and std per channel (tubelet: "
        "VideoMAE's norm_pix_loss) or only by the input's mean/std (none)",
    )


@register_method
class PixelReconstruction(MaskedPrediction):
    name = "salt_teacher"
    networks = {"encoder": "trained", "decoder": "trained"}
    head_attr = "decoder"
    config_section = PixelConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        self.encoder = build_method_encoder(cfg)
        self.decoder = build_head(cfg, self.encoder.embed_dim)

    @torch.no_grad()
    def targets(self, video):
        enc = self.encoder
        norm = self.cfg.method.pixel_norm
        return pixel_targets(video, enc.tubelet_size, enc.patch_size, self.cfg.data.mean, self.cfg.data.std, norm)

    def loss(self, pred, target):
        return pixel_loss(pred, target)

    @classmethod
    def meta_networks(cls, cfg):
        encoder = build_method_encoder(cfg)
        return encoder, build_head(cfg, encoder.embed_dim)


@register_method
class VideoMAE(PixelReconstruction):
    name = "videomae"
