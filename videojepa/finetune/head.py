"""The classification head on an encoder's tokens: an attentive pooler or mean-pool + linear, with dropout.

    head = ClassifierHead("attentive", dim=192, num_classes=4, heads=12, dropout=0.5)
    logits = head(tokens)            # tokens (B, N, D) -> (B, num_classes)

Both reuse the probes of `videojepa.eval.probes` (so a fine-tuned head is the frozen-evaluation probe
trained end to end); the dropout sits before their last linear layer (the paper's head_drop_rate).
`head.arch` describes it for saving and loading.
"""

from __future__ import annotations

import torch
from torch import nn

from videojepa.errors import ConfigError
from videojepa.eval.probes import AttentiveProbe, LinearProbe

HEAD_KINDS = ("attentive", "linear")


class ClassifierHead(nn.Module):
    def __init__(
        self,
        kind: str,
        dim: int,
        num_classes: int,
        heads: int = 12,
        dropout: float = 0.0,
        norm_eps: float | None = None,
    ):
        """norm_eps: a LayerNorm on the mean-pooled tokens before the linear layer (linear heads only; VideoMAE's
        fine-tuned classifiers have one, `fc_norm`, with eps 1e-5)."""
        super().__init__()
        if kind not in HEAD_KINDS:
            raise ConfigError("finetune.head", f"got {kind!r}; allowed values: {', '.join(HEAD_KINDS)}")
        if kind == "attentive" and dim % heads:
            divisors = [h for h in range(1, min(dim, 16) + 1) if dim % h == 0]
            raise ConfigError(
                "finetune.heads",
                f"{heads} does not divide the encoder width {dim}; allowed: {', '.join(map(str, divisors))}",
            )
        if norm_eps is not None and kind != "linear":
            raise ValueError("a head's norm on pooled tokens (norm_eps) only applies to linear heads")
        self.arch = dict(kind=kind, dim=dim, num_classes=num_classes, heads=heads, dropout=dropout)
        if norm_eps is not None:  # recorded only when set: heads saved before it load unchanged
            self.arch["norm_eps"] = norm_eps
        self.norm = nn.LayerNorm(dim, eps=norm_eps) if norm_eps is not None else None
        self.probe = AttentiveProbe(dim, num_classes, heads) if kind == "attentive" else LinearProbe(dim, num_classes)
        self.probe.head = nn.Sequential(nn.Dropout(dropout), self.probe.head)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not self.probe.pooled:
            return self.probe(tokens)
        pooled = tokens.mean(1)
        return self.probe(pooled if self.norm is None else self.norm(pooled))
