"""V-JEPA: predict an EMA copy of the encoder's layer-normed features of the masked tokens.

Its own settings: `method.ema` (momentum, linear from start to end over the schedule horizon) and
`method.loss_exponent`. Evaluation uses the EMA target encoder.
"""

from __future__ import annotations

import copy

import torch
from pydantic import Field, field_validator

from videojepa.errors import ConfigError
from videojepa.methods.base import build_head, build_method_encoder
from videojepa.methods.masked import LatentConfig, LatentPrediction
from videojepa.methods.registry import register_method
from videojepa.optim.schedules import linear
from videojepa.utils.dtensor import local_tensors


class VJEPAConfig(LatentConfig):
    ema: tuple[float, float] = Field(
        (0.996, 1.0), description="EMA momentum, linear start -> end over the schedule horizon"
    )

    @field_validator("ema")
    @classmethod
    def _momenta(cls, ema: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= v <= 1.0 for v in ema):
            raise ConfigError("method.ema", f"{list(ema)} must lie in [0, 1]")
        return ema


@register_method
class VJEPA(LatentPrediction):
    name = "vjepa"
    networks = {"encoder": "trained", "predictor": "trained", "target_encoder": "ema"}
    ema_of = {"target_encoder": "encoder"}
    config_section = VJEPAConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        self.encoder = build_method_encoder(cfg)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.predictor = build_head(cfg, self.encoder.embed_dim, self.encoder.embed_dim)

    def momentum(self, step: int) -> float:
        return linear(*self.cfg.method.ema, self.cfg.train, step)

    @torch.no_grad()
    def after_step(self, step: int) -> dict:
        """target <- m * target + (1 - m) * encoder, parameter by parameter."""
        momentum = self.momentum(step)
        online = local_tensors(self.encoder.parameters())  # under FSDP2: this rank's shards, laid out alike
        target = local_tensors(self.target_encoder.parameters())
        torch._foreach_mul_(target, momentum)
        torch._foreach_add_(target, online, alpha=1.0 - momentum)
        return {"momentum": momentum}

    def export_encoder(self):
        return self.target_encoder  # V-JEPA evaluates the EMA target encoder

    @classmethod
    def meta_networks(cls, cfg):
        encoder = build_method_encoder(cfg)
        return encoder, build_head(cfg, encoder.embed_dim, encoder.embed_dim)

    @classmethod
    def target_architecture(cls, cfg):
        return build_method_encoder(cfg)
