"""Narrow ViTs that follow the encoder.

`Predictor` (V-JEPA, SALT student): encoder tokens of the context plus one learned mask
token per target position -> predicted target features of width `out_dim` (the TARGET's
width: the teacher's in SALT, which may differ from the student's).
`PixelDecoder` (SALT teacher, VideoMAE): same network, output = the pixels of each tubelet.

Mask-token convention: our methods pass `mask_index` = the mask generator's index. A call without
one uses `default_mask_index`: 0 for our predictors, 1 for converted V-JEPA 2 predictors (Hugging
Face's and the official V-JEPA 2 code use mask token 1 when none is named).
"""

from __future__ import annotations

import torch
from torch import nn

from videojepa.models.blocks import LN_EPS, Block, init_weights, rescale_residual_init
from videojepa.models.vit import PositionEncoding, run_blocks


class Predictor(nn.Module):
    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        num_mask_tokens: int = 1,
        pos_embed: str = "rope",
        activation_checkpointing: bool = False,
        default_mask_index: int = 0,
        zero_init_mask_tokens: bool = False,
    ):
        """zero_init_mask_tokens: start the mask tokens at 0 (V-JEPA's and V-JEPA 2's official configs) instead of
        a truncated normal (std 0.02); an initialisation choice only, so it is not part of `arch`."""
        super().__init__()
        if not 0 <= default_mask_index < num_mask_tokens:
            raise ValueError(
                f"default_mask_index {default_mask_index} but the predictor has {num_mask_tokens} mask tokens"
            )
        self.activation_checkpointing = activation_checkpointing
        self.default_mask_index = default_mask_index
        self.embed = nn.Linear(in_dim, embed_dim)
        self.mask_tokens = nn.Parameter(torch.zeros(num_mask_tokens, embed_dim))
        self.pos = PositionEncoding(pos_embed, embed_dim, num_heads)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, int(embed_dim * mlp_ratio)) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.head = nn.Linear(embed_dim, out_dim)
        self.arch = dict(
            in_dim=in_dim,
            out_dim=out_dim,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            num_mask_tokens=num_mask_tokens,
            pos_embed=pos_embed,
        )
        if default_mask_index:
            self.arch["default_mask_index"] = default_mask_index
        self.apply(init_weights)
        if not zero_init_mask_tokens:
            nn.init.trunc_normal_(self.mask_tokens, std=0.02)
        rescale_residual_init(self.blocks)

    def forward(
        self,
        context: torch.Tensor,
        context_ids: torch.Tensor,
        target_ids: torch.Tensor,
        grid: tuple[int, int, int],
        mask_index: int | None = None,
    ) -> torch.Tensor:
        """context (B, Nc, in_dim) at token ids context_ids (B, Nc); predict target_ids (B, Nt).

        mask_index picks the mask generator's own learned mask token (None: `default_mask_index`).
        Returns (B, Nt, out_dim).
        """
        if mask_index is None:
            mask_index = self.default_mask_index
        if not 0 <= mask_index < len(self.mask_tokens):
            raise ValueError(f"mask_index {mask_index} but the predictor has {len(self.mask_tokens)} mask tokens")
        batch, num_targets = target_ids.shape
        x = self.pos.add_absolute(self.embed(context), context_ids, grid)
        queries = self.mask_tokens[mask_index].to(x.dtype).expand(batch, num_targets, -1)
        queries = self.pos.add_absolute(queries, target_ids, grid)
        ids = torch.cat([context_ids, target_ids], dim=1)
        use_ckpt = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        x, _ = run_blocks(self.blocks, torch.cat([x, queries], dim=1), self.pos.rotary(ids, grid), use_ckpt)
        return self.head(self.norm(x[:, context.shape[1] :]))


class PixelDecoder(Predictor):
    """Predicts the tubelet x patch x patch x channels pixel values of each target token."""

    def __init__(self, in_dim: int, tubelet_size: int, patch_size: int, in_chans: int = 3, **kwargs):
        super().__init__(in_dim, tubelet_size * patch_size * patch_size * in_chans, **kwargs)
        self.arch.update(tubelet_size=tubelet_size, patch_size=patch_size, in_chans=in_chans)
