"""Masked prediction: the forward pass every built-in method shares.

Per clip: compute the regression targets of all tokens once; embed the clip once; then for each mask
generator, encode only its context tokens, let the head (predictor or pixel decoder) predict the target
tokens, and score them against the gathered targets. The loss is the mean over mask generators.
Subclasses say only what the targets are, what the loss is, and which networks produce them.
`method.feature_reg` > 0 adds VICReg's variance-covariance penalty on each mask's context features.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from videojepa.config.schema import MethodSection
from videojepa.flops import context_encoder_flops, forward_flops, head_flops
from videojepa.methods.base import Method
from videojepa.methods.losses import (
    channel_std,
    gather_tokens,
    latent_loss,
    normalize_features,
    variance_covariance,
)


class MaskedConfig(MethodSection):
    """The `method:` keys of every masked-prediction method."""

    feature_reg: float = Field(
        0.0,
        ge=0.0,
        description="weight of a variance-covariance penalty (VICReg's) on the context encoder's features, added "
        "to the loss: keeps them from collapsing to a few directions at high lr; its statistics span the batch on "
        "all ranks, but each micro-batch when train.accum_steps > 1",
    )


class LatentConfig(MaskedConfig):
    """The `method:` keys of the methods that predict another network's features."""

    loss_exponent: float = Field(1.0, gt=0.0, description="latent loss mean |pred - LN(target)|^p")


class MaskedPrediction(Method):
    head_attr = "predictor"
    config_section = MaskedConfig

    @property
    def head(self) -> nn.Module:
        return getattr(self, self.head_attr)

    def targets(self, video: torch.Tensor) -> torch.Tensor:
        """(B, N, C) regression targets of every token of the clips, without gradient."""
        raise TypeError(f"{type(self).__qualname__} must define targets()")

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__qualname__} must define loss()")

    def forward(self, video, masks):
        target = self.targets(video)
        tokens, grid = self.encoder.embed(video)
        losses, pred_std, context_std, penalties = [], [], [], []
        weight = self.cfg.method.feature_reg
        for index, m in enumerate(masks):
            context = self.encoder.forward_tokens(tokens, grid, keep=m.context)
            pred = self.head(context, m.context, m.target, grid, mask_index=index)
            losses.append(self.loss(pred, gather_tokens(target, m.target)))
            pred_std.append(channel_std(pred))
            context_std.append(channel_std(context))
            if weight:
                penalties.append(variance_covariance(context))
        metrics = {f"loss_mask{index}": loss.detach() for index, loss in enumerate(losses)}
        metrics.update(
            target_std=channel_std(target),
            pred_std=torch.stack(pred_std).mean(),
            context_std=torch.stack(context_std).mean(),
        )
        loss = torch.stack(losses).mean()
        if weight:
            penalty = torch.stack(penalties).mean()
            metrics["feature_reg"] = penalty.detach()
            loss = loss + weight * penalty
        return loss, metrics

    @classmethod
    def flops_components(cls, cfg, shape):
        """The encoder on context tokens and the head on context + target tokens, both trained."""
        encoder, head = cls.meta_networks(cfg)
        return [context_encoder_flops(encoder, shape), head_flops(cls.head_attr, head, shape)]


class LatentPrediction(MaskedPrediction):
    """Predict another network's layer-normed features of the masked tokens (V-JEPA, SALT student)."""

    target_attr = "target_encoder"
    config_section = LatentConfig

    @property
    def target_network(self) -> nn.Module:
        return getattr(self, self.target_attr)

    @torch.no_grad()
    def targets(self, video):
        return normalize_features(self.target_network(video))

    def loss(self, pred, target):
        return latent_loss(pred, target, self.cfg.method.loss_exponent)

    @classmethod
    def flops_components(cls, cfg, shape):
        """Encoder and predictor trained, plus one forward of the target network over the full clip."""
        with torch.device("meta"):
            target = cls.target_architecture(cfg)
        return [*super().flops_components(cfg, shape), forward_flops(cls.target_attr, target, shape)]
