"""Video Vision Transformer: tubelet embedding, pre-norm blocks, masked forward.

Input is a clip (B, C, T, H, W) or an image batch (B, C, H, W), which is treated as a still
clip of `tubelet_size` repeated frames. Tokens are ordered (t, h, w); `keep` index tensors
select tokens BEFORE the blocks, so masked tokens cost nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from videojepa.models.blocks import LN_EPS, Block, init_weights, rescale_residual_init
from videojepa.models.pos_embed import Rope3D, sincos_3d, sincos_flat, token_coords

# sincos: V-JEPA's fixed 3D table; rope: 3D rotary; rope_vjepa2: rotary in V-JEPA 2's released layout;
# sincos_1d: VideoMAE's 1-D table over the flat token index.
POS_EMBEDS = ("sincos", "rope", "rope_vjepa2", "sincos_1d")
ABSOLUTE = ("sincos", "sincos_1d")

# Architecture variants that only converted checkpoints use; `arch` records them only when they differ
# from these defaults, so files and descriptions of our own models stay as they were.
VARIANT_DEFAULTS = {"k_bias": True, "final_norm": True, "norm_eps": LN_EPS}


class PositionEncoding(nn.Module):
    """Either a fixed sin-cos table added to tokens, or RoPE tables handed to attention."""

    def __init__(self, kind: str, embed_dim: int, num_heads: int):
        super().__init__()
        if kind not in POS_EMBEDS:
            raise ValueError(f"pos_embed must be one of {', '.join(POS_EMBEDS)}, got {kind!r}")
        self.kind, self.embed_dim = kind, embed_dim
        self.rope = None
        if kind.startswith("rope"):
            self.rope = Rope3D(embed_dim // num_heads, vjepa2_layout=kind == "rope_vjepa2")
        self._tables: dict = {}

    def sincos(self, grid: tuple[int, int, int], device: torch.device) -> torch.Tensor:
        key = (grid, device)
        if key not in self._tables:
            table = (
                sincos_3d(self.embed_dim, grid)
                if self.kind == "sincos"
                else sincos_flat(self.embed_dim, grid[0] * grid[1] * grid[2])
            )
            self._tables[key] = table.to(device)
        return self._tables[key]

    def add_absolute(self, tokens: torch.Tensor, ids: torch.Tensor, grid) -> torch.Tensor:
        """Add the sin-cos rows of `ids` (B, N) to tokens (B, N, D); identity for RoPE."""
        if self.kind not in ABSOLUTE:
            return tokens
        return tokens + self.sincos(grid, tokens.device)[ids].to(tokens.dtype)

    def rotary(self, ids: torch.Tensor, grid):
        return self.rope.tables(token_coords(ids, grid)) if self.rope is not None else None


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, rope, use_checkpointing: bool, collect=()):
    """Apply blocks in turn; returns the final tokens and those after the block indices in `collect`."""
    saved = {}
    for index, block in enumerate(blocks):
        if use_checkpointing:
            x = checkpoint(block, x, rope, use_reentrant=False)
        else:
            x = block(x, rope)
        if index in collect:
            saved[index] = x
    return x, saved


class VisionTransformer(nn.Module):
    card = None  # the EncoderCard of an encoder read from a file (`videojepa.load_encoder`)

    def __init__(
        self,
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        mlp_hidden: int | None = None,
        patch_size: int = 16,
        tubelet_size: int = 2,
        in_chans: int = 3,
        pos_embed: str = "rope",
        drop_path: float = 0.0,
        qkv_bias: bool = True,
        activation_checkpointing: bool = False,
        k_bias: bool = True,
        final_norm: bool = True,
        norm_eps: float = LN_EPS,
    ):
        """k_bias=False: q/v biases without a k bias; final_norm=False: no LayerNorm on the outputs
        (VideoMAE's mean-pooling encoders); norm_eps: the LayerNorm epsilon. See `VARIANT_DEFAULTS`."""
        super().__init__()
        mlp_hidden = mlp_hidden or 4 * embed_dim
        self.embed_dim, self.depth, self.num_heads = embed_dim, depth, num_heads
        self.patch_size, self.tubelet_size, self.in_chans = patch_size, tubelet_size, in_chans
        self.activation_checkpointing = activation_checkpointing
        self.patch_embed = nn.Conv3d(
            in_chans,
            embed_dim,
            kernel_size=(tubelet_size, patch_size, patch_size),
            stride=(tubelet_size, patch_size, patch_size),
        )
        self.pos = PositionEncoding(pos_embed, embed_dim, num_heads)
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_hidden, rates[i], qkv_bias, k_bias, norm_eps) for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps) if final_norm else nn.Identity()
        self.arch = dict(
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_hidden=mlp_hidden,
            patch_size=patch_size,
            tubelet_size=tubelet_size,
            in_chans=in_chans,
            pos_embed=pos_embed,
            qkv_bias=qkv_bias,
        )
        variants = dict(k_bias=k_bias, final_norm=final_norm, norm_eps=norm_eps)
        self.arch.update({k: v for k, v in variants.items() if v != VARIANT_DEFAULTS[k]})
        self.apply(init_weights)
        rescale_residual_init(self.blocks)

    def grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Token grid (T', H', W') of a clip; errors name the size that does not fit."""
        for size, step, what in (
            (frames, self.tubelet_size, "frames"),
            (height, self.patch_size, "height"),
            (width, self.patch_size, "width"),
        ):
            if size % step:
                raise ValueError(
                    f"clip {what} {size} is not divisible by {'tubelet' if what == 'frames' else 'patch'} size {step}"
                )
        return frames // self.tubelet_size, height // self.patch_size, width // self.patch_size

    def as_clip(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:  # images: a still clip one tubelet long
            return x.unsqueeze(2).expand(-1, -1, self.tubelet_size, -1, -1)
        if x.ndim != 5:
            raise ValueError(f"expected (B, C, T, H, W) clips or (B, C, H, W) images, got shape {tuple(x.shape)}")
        return x

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Clip or images -> all tubelet tokens (B, N, D) before positions, and the token grid."""
        x = self.as_clip(x)
        grid = self.grid(*x.shape[2:])
        return self.tubelet_embed(x), grid

    def tubelet_embed(self, x: torch.Tensor) -> torch.Tensor:
        """The Conv3d patch embedding computed as one matmul over cut-out tubelets.

        Same weights and result as `self.patch_embed(x)` (a stride = kernel convolution), but
        measured 2x faster on CPU, where the 3D convolution kernel is slow in bf16.
        """
        B, C, T, H, W = x.shape
        t, p = self.tubelet_size, self.patch_size
        tubelets = x.reshape(B, C, T // t, t, H // p, p, W // p, p).permute(0, 2, 4, 6, 1, 3, 5, 7)
        tubelets = tubelets.reshape(B, (T // t) * (H // p) * (W // p), C * t * p * p)
        return F.linear(tubelets, self.patch_embed.weight.flatten(1), self.patch_embed.bias)

    def forward(
        self, x: torch.Tensor, keep: torch.Tensor | None = None, layers: Sequence[int] | None = None
    ) -> torch.Tensor | list[torch.Tensor]:
        """Encode clips.

        keep: (B, K) token ids to process (others are dropped before the blocks); None = all.
        layers: block indices (negative counts from the end) whose normed outputs to return
            as a list, in the given order; None returns the final normed tokens (B, K, D).
            (An encoder built with final_norm=False returns them un-normed.)
        """
        tokens, grid = self.embed(x)
        return self.forward_tokens(tokens, grid, keep, layers)

    def forward_tokens(
        self,
        tokens: torch.Tensor,
        grid: tuple[int, int, int],
        keep: torch.Tensor | None = None,
        layers: Sequence[int] | None = None,
    ):
        """`forward` from embedded tokens, so several masks of one clip share one embedding."""
        batch, num_tokens = tokens.shape[:2]
        if keep is None:
            ids = torch.arange(num_tokens, device=tokens.device).expand(batch, -1)
        else:
            ids = keep
            tokens = tokens.gather(1, keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        tokens = self.pos.add_absolute(tokens, ids, grid)
        rope = self.pos.rotary(ids, grid)
        wanted = [self.depth + i if i < 0 else i for i in (layers or [])]
        if any(not 0 <= i < self.depth for i in wanted):
            raise ValueError(f"layers {list(layers)} out of range for a {self.depth}-block encoder")
        use_ckpt = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        out, saved = run_blocks(self.blocks, tokens, rope, use_ckpt, set(wanted))
        if layers is None:
            return self.norm(out)
        return [self.norm(saved[i]) for i in wanted]
