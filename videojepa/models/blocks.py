"""Transformer building blocks: pre-norm block, fused-qkv attention with optional RoPE.

Variants needed to reproduce released checkpoints exactly (selected by the converters):
`k_bias=False` gives q and v biases but none for k (VideoMAE), `norm_eps` the LayerNorm epsilon
(VideoMAE uses 1e-12 where V-JEPA uses 1e-6).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from videojepa.models.pos_embed import apply_rope
from videojepa.utils.precision import cpu_attention

LN_EPS = 1e-6


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, k_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.split_bias = qkv_bias and not k_bias
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias and k_bias)
        if self.split_bias:  # q and v biases only: k has none to load, so it has none to train either
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        B, N, C = x.shape
        if self.split_bias:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
            qkv = F.linear(x, self.qkv.weight, bias)
        else:
            qkv = self.qkv(x)
        q, k, v = qkv.view(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        if rope is not None:
            cos, sin = (t.to(q.dtype) for t in rope)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return self.proj(attention(q, k, v).transpose(1, 2).reshape(B, N, C))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v.

    On CPU in bf16, two bf16 matmuls and a softmax or PyTorch's fused SDPA kernel, whichever a probe measured
    faster on this machine (`videojepa.utils.precision.cpu_attention`; on one AMD EPYC the fused kernel was
    2-3x slower, forward + backward, at 150-400 tokens, with the same error against fp32); elsewhere the
    fused kernel.
    """
    if q.device.type == "cpu" and q.dtype == torch.bfloat16 and cpu_attention() == "matmul":
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
        return scores.softmax(dim=-1) @ v
    return F.scaled_dot_product_attention(q, k, v)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample while training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty(x.shape[0], *([1] * (x.ndim - 1))).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


class Block(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_hidden: int,
        drop_path: float = 0.0,
        qkv_bias: bool = True,
        k_bias: bool = True,
        norm_eps: float = LN_EPS,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, k_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, mlp_hidden)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, rope=None) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), rope))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def init_weights(module: nn.Module) -> None:
    """Truncated normal 0.02 for linear/conv weights, zero biases, unit LayerNorm."""
    if isinstance(module, (nn.Linear, nn.Conv3d)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def rescale_residual_init(blocks: nn.ModuleList) -> None:
    """Shrink each block's residual output projections by sqrt(2 * depth_index) (as V-JEPA)."""
    with torch.no_grad():
        for index, block in enumerate(blocks, start=1):
            block.attn.proj.weight.div_((2.0 * index) ** 0.5)
            block.mlp.fc2.weight.div_((2.0 * index) ** 0.5)
