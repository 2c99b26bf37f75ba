"""Probes on a frozen encoder's features.

    probe = build_probe("attentive", dim=384, num_classes=10)    # tokens (B, N, D) -> logits (B, 10)
    probe = build_probe("linear", dim=384, num_classes=10)       # pooled (B, D)    -> logits (B, 10)

- `AttentiveProbe`: learnable query token(s) cross-attend to the tokens (one pre-norm cross-attention
  block with an MLP, V-JEPA's attentive pooler), then a linear classifier on the query outputs
  (concatenated when there are several). `self_attn_blocks=3` puts three standard transformer blocks
  on the tokens before the cross-attention (V-JEPA 2's probe, kind `attentive3`).
- `LinearProbe`: a linear classifier on mean-pooled tokens.
- `KNNClassifier`: cosine k-nearest neighbours on mean-pooled tokens, votes weighted by
  exp(similarity / temperature) (the DINO recipe); returns per-class vote shares as scores.

A probe's `pooled` attribute says which input it takes: tokens (False) or mean-pooled features (True).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from videojepa.errors import UserError
from videojepa.models.blocks import LN_EPS, Block, Mlp, init_weights


class CrossAttention(nn.Module):
    """Queries (B, Q, D) attend to tokens (B, N, D)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        B, Q, D = q.shape
        N, H = x.shape[1], self.num_heads
        q = self.q(q).view(B, Q, H, D // H).transpose(1, 2)
        k, v = self.kv(x).view(B, N, 2, H, D // H).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, Q, D))


class CrossAttentionBlock(nn.Module):
    """q + xattn(q, LN(x)), then q + MLP(LN(q)) (V-JEPA's pooler block: the tokens are normed, not q)."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.xattn = CrossAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        q = q + self.xattn(q, self.norm1(x))
        return q + self.mlp(self.norm2(q))


class AttentiveProbe(nn.Module):
    pooled = False

    def __init__(self, dim: int, num_classes: int, num_heads: int = 12, num_queries: int = 1,
                 self_attn_blocks: int = 0, mlp_ratio: float = 4.0):
        super().__init__()
        if dim % num_heads:
            divisors = [h for h in range(1, min(dim, 16) + 1) if dim % h == 0]
            raise UserError(f"probe.heads={num_heads} does not divide the feature width {dim}; "
                            f"allowed: {', '.join(map(str, divisors))}")
        hidden = int(dim * mlp_ratio)
        self.blocks = nn.ModuleList(Block(dim, num_heads, hidden) for _ in range(self_attn_blocks))
        self.query = nn.Parameter(torch.zeros(1, num_queries, dim))
        self.pool = CrossAttentionBlock(dim, num_heads, hidden)
        self.head = nn.Linear(num_queries * dim, num_classes)
        nn.init.trunc_normal_(self.query, std=0.02)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        q = self.pool(self.query.expand(x.shape[0], -1, -1), x)
        return self.head(q.flatten(1))


class LinearProbe(nn.Module):
    pooled = True

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.head = nn.Linear(dim, num_classes)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


class KNNClassifier:
    """Cosine kNN over stored training features; `scores(x)` gives (B, num_classes) vote shares."""

    pooled = True

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int = 20,
                 temperature: float = 0.07):
        self.bank = F.normalize(features.float(), dim=-1)
        self.labels, self.num_classes = labels.long(), num_classes
        self.k, self.temperature = min(k, len(labels)), temperature

    @torch.no_grad()
    def scores(self, x: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        out = []
        for part in F.normalize(x.float(), dim=-1).split(chunk):
            sim, idx = (part @ self.bank.T).topk(self.k, dim=1)
            votes = torch.zeros(len(part), self.num_classes)
            votes.scatter_add_(1, self.labels[idx], (sim / self.temperature).exp())
            out.append(votes / votes.sum(1, keepdim=True))
        return torch.cat(out)

    __call__ = scores


def build_probe(kind: str, dim: int, num_classes: int, num_heads: int = 12, num_queries: int = 1) -> nn.Module:
    """A trainable probe by kind name (kNN is built from its training features: `KNNClassifier`)."""
    if kind == "attentive":
        return AttentiveProbe(dim, num_classes, num_heads, num_queries)
    if kind == "attentive3":
        return AttentiveProbe(dim, num_classes, num_heads, num_queries, self_attn_blocks=3)
    if kind == "linear":
        return LinearProbe(dim, num_classes)
    raise ValueError(f"no trainable probe of kind {kind!r}; allowed: attentive, attentive3, linear")
