"""Masked pixel reconstruction: SALT's stage-1 teacher (V-Pixel, multi-block masks) and the
VideoMAE baseline (random tube masks). Same network and loss; the config's masks differ."""
from __future__ import annotations

from videojepa.methods.base import Method, build_encoder, build_head, mean_over_masks
from videojepa.methods.losses import channel_std, gather_tokens, pixel_loss, pixel_targets


class PixelReconstruction(Method):
    name = "salt_teacher"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.encoder = build_encoder(cfg)
        self.decoder = build_head(cfg, self.encoder.embed_dim)

    def forward(self, video, masks):
        enc = self.encoder
        target = pixel_targets(video, enc.tubelet_size, enc.patch_size, self.cfg.data.mean, self.cfg.data.std)
        tokens, grid = enc.embed(video)
        losses, contexts = [], []
        for g, m in enumerate(masks):
            context = enc.forward_tokens(tokens, grid, keep=m.context)
            pred = self.decoder(context, m.context, m.target, grid, mask_index=g)
            losses.append(pixel_loss(pred, gather_tokens(target, m.target)))
            contexts.append(context)
        metrics = {f"loss_mask{g}": l.detach() for g, l in enumerate(losses)}
        metrics["target_std"] = channel_std(contexts[0])  # encoder features: the teacher-to-be
        metrics["pred_std"] = channel_std(pred)
        return mean_over_masks(losses), metrics


class VideoMAE(PixelReconstruction):
    name = "videomae"
