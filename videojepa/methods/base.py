"""What every pretraining method provides to the method-agnostic trainer.

A method is an nn.Module that owns its networks and turns one batch into a loss:

    loss, metrics = method(video, masks)      # masks: list of MaskIndices, one per generator

plus `after_step(momentum)` (the EMA update, for methods that have one), `export_encoder()`
(the network evaluation uses) and `health_encoder()` (the network whose features the
collapse monitors watch). Frozen networks are excluded from `trainable_parameters()`.
"""
from __future__ import annotations

import torch
from torch import nn

from videojepa.config.schema import PretrainConfig
from videojepa.models.predictor import PixelDecoder, Predictor
from videojepa.models.registry import create_model


def build_encoder(cfg: PretrainConfig) -> nn.Module:
    m = cfg.model
    return create_model(m.name, patch_size=m.patch_size, tubelet_size=m.tubelet_size, pos_embed=m.pos_embed,
                        drop_path=m.drop_path, activation_checkpointing=cfg.train.activation_checkpointing)


def build_head(cfg: PretrainConfig, in_dim: int, out_dim: int | None = None) -> nn.Module:
    """The predictor (out_dim given) or pixel decoder (out_dim None) that follows the encoder."""
    p = cfg.predictor
    kwargs = dict(embed_dim=p.embed_dim, depth=p.depth, num_heads=p.num_heads, mlp_ratio=p.mlp_ratio,
                  num_mask_tokens=len(cfg.masks), pos_embed=cfg.model.pos_embed,
                  activation_checkpointing=cfg.train.activation_checkpointing)
    if out_dim is None:
        return PixelDecoder(in_dim, cfg.model.tubelet_size, cfg.model.patch_size, **kwargs)
    return Predictor(in_dim, out_dim, **kwargs)


class Method(nn.Module):
    name = "method"

    def __init__(self, cfg: PretrainConfig):
        super().__init__()
        self.cfg = cfg

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def after_step(self, momentum: float) -> None:
        """Called after every optimiser step (vjepa: EMA update)."""

    def export_encoder(self) -> nn.Module:
        return self.encoder

    def health_encoder(self) -> nn.Module:
        return self.export_encoder()

    def frozen_modules(self) -> list[nn.Module]:
        """Networks that stay in eval mode and outside the optimiser."""
        return []

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self


def mean_over_masks(losses: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(losses).mean()
