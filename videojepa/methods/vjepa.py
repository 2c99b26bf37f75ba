"""V-JEPA: predict an EMA copy of the encoder's layer-normed features of the masked tokens."""
from __future__ import annotations

import copy

import torch

from videojepa.methods.base import Method, build_encoder, build_head, mean_over_masks
from videojepa.methods.losses import channel_std, gather_tokens, latent_loss, normalize_features


class VJEPA(Method):
    name = "vjepa"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.encoder = build_encoder(cfg)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.predictor = build_head(cfg, self.encoder.embed_dim, self.encoder.embed_dim)

    def frozen_modules(self):
        return [self.target_encoder]

    def forward(self, video, masks):
        with torch.no_grad():  # the target runs once per clip, shared by every mask
            target = normalize_features(self.target_encoder(video))
        tokens, grid = self.encoder.embed(video)
        losses, preds = [], []
        for g, m in enumerate(masks):
            context = self.encoder.forward_tokens(tokens, grid, keep=m.context)
            pred = self.predictor(context, m.context, m.target, grid, mask_index=g)
            losses.append(latent_loss(pred, gather_tokens(target, m.target), self.cfg.method.loss_exponent))
            preds.append(pred)
        metrics = {f"loss_mask{g}": l.detach() for g, l in enumerate(losses)}
        metrics["target_std"] = channel_std(target)
        metrics["pred_std"] = channel_std(preds[0])
        return mean_over_masks(losses), metrics

    @torch.no_grad()
    def after_step(self, momentum: float) -> None:
        """target <- m * target + (1 - m) * encoder, parameter by parameter."""
        online = list(self.encoder.parameters())
        target = list(self.target_encoder.parameters())
        torch._foreach_mul_(target, momentum)
        torch._foreach_add_(target, online, alpha=1.0 - momentum)

    def export_encoder(self):
        return self.target_encoder  # V-JEPA evaluates the EMA target encoder
