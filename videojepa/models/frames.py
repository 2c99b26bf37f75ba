"""An image Vision Transformer used as a video encoder: every frame encoded on its own, frame maps concatenated.

    encoder = FrameEncoder(tower="dinov2", embed_dim=768, depth=12, num_heads=12, mlp_hidden=3072,
                           patch_size=14, image_size=518)
    tokens = encoder(clips)          # (B, C, T, H, W) -> (B, T * H/p * W/p, D), tokens ordered (t, h, w)

This is how the V-JEPA paper evaluates image models on video (appendix B.1: each frame through the image
encoder, the frame feature maps concatenated for the attentive probe). The module has the interface of
`VisionTransformer` that extraction and probing use (`grid`, `embed_dim`, `depth`, `num_heads`,
`patch_size`, `tubelet_size` = 1, `forward(clips, layers=...)`, `arch`, `card`), so `load_encoder` returns it
like any other encoder. It covers the image towers `transformers` ships (DINOv2 with or without registers,
CLIP's and SigLIP's vision towers); `videojepa.interop.image_towers` converts their weights.

The variants (all recorded in `arch`, whose `kind` is "frames"):
  class_token / registers   tokens before the patches (DINOv2, CLIP: a class token; DINOv2-reg: registers
                            after it); they take part in attention and are dropped from the output
  patch_bias                the patch convolution's bias (CLIP has none)
  pre_norm                  a LayerNorm on the embedded tokens before the blocks (CLIP's `pre_layrnorm`)
  final_norm                a LayerNorm on the outputs (DINOv2's `layernorm`, SigLIP's `post_layernorm`;
                            CLIP has none on its token outputs: its post-norm is for the pooled class token)
  layer_scale               per-channel scales on both residual branches (DINOv2)
  mlp                       gelu, gelu_tanh (SigLIP), quick_gelu (CLIP) or swiglu (DINOv2 ViT-g)
  antialias                 how the position table is resampled for another image size (bicubic; DINOv2-reg
                            with antialiasing), exactly as `transformers` does it
A position table learned for `image_size` is used as it is at that size and resampled otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from videojepa.models.blocks import LN_EPS, Attention

MLPS = ("gelu", "gelu_tanh", "quick_gelu", "swiglu")


class TowerMlp(nn.Module):
    """fc1 -> activation -> fc2; for swiglu fc1 holds the gate and the up projection stacked (DINOv2's layout)."""

    def __init__(self, dim: int, hidden: int, kind: str):
        super().__init__()
        if kind not in MLPS:
            raise ValueError(f"mlp must be one of {', '.join(MLPS)}, got {kind!r}")
        self.kind = kind
        self.fc1 = nn.Linear(dim, 2 * hidden if kind == "swiglu" else hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        if self.kind == "swiglu":
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        elif self.kind == "quick_gelu":
            h = h * torch.sigmoid(1.702 * h)
        else:
            h = F.gelu(h, approximate="tanh" if self.kind == "gelu_tanh" else "none")
        return self.fc2(h)


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class TowerBlock(nn.Module):
    """Pre-norm block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x)))."""

    def __init__(self, dim: int, num_heads: int, hidden: int, mlp: str, eps: float, qkv_bias: bool, scale: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.ls1 = LayerScale(dim) if scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = TowerMlp(dim, hidden, mlp)
        self.ls2 = LayerScale(dim) if scale else nn.Identity()
        self.drop_path = nn.Identity()  # fine-tuning may set stochastic depth (`finetune.model.set_drop_path`)

    def forward(self, x: torch.Tensor, rope=None) -> torch.Tensor:
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


class FramePatchEmbed(nn.Module):
    """Frames (N, C, H, W) -> tokens (N, prefix + h*w, D): patches, class token, positions, registers."""

    def __init__(
        self,
        dim: int,
        patch_size: int,
        image_size: int,
        in_chans: int,
        class_token: bool,
        registers: int,
        patch_bias: bool,
        antialias: bool,
    ):
        super().__init__()
        self.patch_size, self.image_size, self.antialias = patch_size, image_size, antialias
        self.proj = nn.Conv2d(in_chans, dim, patch_size, patch_size, bias=patch_bias)
        side = image_size // patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if class_token else None
        self.pos_table = nn.Parameter(torch.zeros(1, int(class_token) + side * side, dim))
        self.registers = nn.Parameter(torch.zeros(1, registers, dim)) if registers else None

    @property
    def prefix(self) -> int:
        """Tokens before the patches: the class token and the registers."""
        return int(self.cls_token is not None) + (0 if self.registers is None else self.registers.shape[1])

    def positions(self, h: int, w: int) -> torch.Tensor:
        """The position table for an h x w patch grid: as learned, or resampled bicubically (in float32)."""
        table = self.pos_table
        head = int(self.cls_token is not None)
        learned = table.shape[1] - head
        if h * w == learned and h == w:
            return table
        side = int(learned**0.5)
        grid = table[:, head:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(
            grid.float(), size=(h, w), mode="bicubic", align_corners=False, antialias=self.antialias
        ).to(table.dtype)
        return torch.cat([table[:, :head], grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)], dim=1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        n, _, height, width = frames.shape
        x = self.proj(frames).flatten(2).transpose(1, 2)  # (N, h*w, D), patches ordered (h, w)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(n, -1, -1).to(x.dtype), x], dim=1)
        x = x + self.positions(height // self.patch_size, width // self.patch_size).to(x.dtype)
        if self.registers is not None:  # after the class token, without positions (DINOv2 with registers)
            x = torch.cat([x[:, :1], self.registers.expand(n, -1, -1).to(x.dtype), x[:, 1:]], dim=1)
        return x


class FrameEncoder(nn.Module):
    card = None  # the EncoderCard of an encoder read from a file (`videojepa.load_encoder`)
    tubelet_size = 1  # one frame per token: the token grid of a clip is (T, H/p, W/p)

    def __init__(
        self,
        tower: str,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_hidden: int,
        patch_size: int,
        image_size: int,
        in_chans: int = 3,
        class_token: bool = True,
        registers: int = 0,
        patch_bias: bool = True,
        pre_norm: bool = False,
        final_norm: bool = True,
        layer_scale: bool = False,
        mlp: str = "gelu",
        norm_eps: float = LN_EPS,
        qkv_bias: bool = True,
        antialias: bool = False,
    ):
        super().__init__()
        self.embed_dim, self.depth, self.num_heads = embed_dim, depth, num_heads
        self.patch_size, self.in_chans = patch_size, in_chans
        self.activation_checkpointing = False
        self.patch_embed = FramePatchEmbed(
            embed_dim, patch_size, image_size, in_chans, class_token, registers, patch_bias, antialias
        )
        self.pre_norm = nn.LayerNorm(embed_dim, eps=norm_eps) if pre_norm else nn.Identity()
        self.blocks = nn.ModuleList(
            TowerBlock(embed_dim, num_heads, mlp_hidden, mlp, norm_eps, qkv_bias, layer_scale) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps) if final_norm else nn.Identity()
        self.arch = dict(
            kind="frames",
            tower=tower,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_hidden=mlp_hidden,
            patch_size=patch_size,
            image_size=image_size,
            in_chans=in_chans,
            class_token=class_token,
            registers=registers,
            patch_bias=patch_bias,
            pre_norm=pre_norm,
            final_norm=final_norm,
            layer_scale=layer_scale,
            mlp=mlp,
            norm_eps=norm_eps,
            qkv_bias=qkv_bias,
            antialias=antialias,
        )

    def grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Token grid (T, H', W') of a clip; errors name the size that does not fit."""
        for size, what in ((height, "height"), (width, "width")):
            if size % self.patch_size:
                raise ValueError(f"clip {what} {size} is not divisible by patch size {self.patch_size}")
        return frames, height // self.patch_size, width // self.patch_size

    def forward(
        self, x: torch.Tensor, keep: torch.Tensor | None = None, layers: Sequence[int] | None = None
    ) -> torch.Tensor | list[torch.Tensor]:
        """Clips (B, C, T, H, W) or images (B, C, H, W) -> patch tokens (B, T*h*w, D) ordered (t, h, w), after
        the final norm (when the tower has one). `layers`: block indices (negative from the end) whose outputs,
        through the final norm, are returned as a list. Frame encoders take no token masks (`keep`)."""
        if keep is not None:
            raise ValueError("a frame encoder (an image model applied per frame) does not take token masks")
        if x.ndim == 4:
            x = x.unsqueeze(2)
        if x.ndim != 5:
            raise ValueError(f"expected (B, C, T, H, W) clips or (B, C, H, W) images, got shape {tuple(x.shape)}")
        B, C, T, H, W = x.shape
        _, h, w = self.grid(T, H, W)
        tokens = self.pre_norm(self.patch_embed(x.transpose(1, 2).reshape(B * T, C, H, W)))
        wanted = [self.depth + i if i < 0 else i for i in (layers or [])]
        if any(not 0 <= i < self.depth for i in wanted):
            raise ValueError(f"layers {list(layers)} out of range for a {self.depth}-block encoder")
        saved = {}
        use_ckpt = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        for index, block in enumerate(self.blocks):
            tokens = checkpoint(block, tokens, use_reentrant=False) if use_ckpt else block(tokens)
            if index in wanted:
                saved[index] = tokens
        prefix = self.patch_embed.prefix

        def output(t: torch.Tensor) -> torch.Tensor:  # the patch tokens of every frame, in time order
            return self.norm(t)[:, prefix:].reshape(B, T * h * w, self.embed_dim)

        if layers is None:
            return output(tokens)
        return [output(saved[i]) for i in wanted]
