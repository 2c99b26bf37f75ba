"""Reference forms the tests (and benchmarks/bench_probe_step.py) compare the fast production code against.

Written the textbook way, with nothing folded or shared, so that a disagreement points at the fast form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_attention(xattn, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Standard multi-head cross-attention with the parameters of a `videojepa.eval.probes.CrossAttention`:
    queries (B, Q, D) attend to tokens (B, N, D) through materialised keys and values."""
    B, Q, D = q.shape
    N, H = x.shape[1], xattn.num_heads
    q = xattn.q(q).view(B, Q, H, D // H).transpose(1, 2)
    k, v = xattn.kv(x).view(B, N, 2, H, D // H).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(q, k, v)
    return xattn.proj(out.transpose(1, 2).reshape(B, Q, D))


def cross_attention_block(block, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A `videojepa.eval.probes.CrossAttentionBlock` unfolded: q + xattn(q, LayerNorm(x)), then q + MLP(LN(q))."""
    q = q + cross_attention(block.xattn, q, block.norm1(x))
    return q + block.mlp(block.norm2(q))
