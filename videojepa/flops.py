"""FLOPs primitives: what a network costs per step, by the SALT paper's rule (the accountant's parts).

Paper rule, attention ignored: a trained network costs 6*N*D per step, a frozen forward-only
network 2*N*D, N = non-embedding parameters (the encoder's tubelet embedding is left out, as
in Kaplan et al. 2020), D = tokens it processes in that step. With batch B, n tokens
per clip and M mask generators whose context/target lengths are c_g/t_g, the masked-prediction
methods are made of:

    encoder (trained)           D = sum_g c_g * B          (c_g = (1 - 0.9) n by the paper's rule)
    predictor/decoder (trained) D = sum_g (c_g + t_g) * B  (= M n B)
    target network (frozen)     D = n * B                  (an EMA copy or a frozen teacher)

Each method declares its own components (`Method.flops_components(cfg, shape)`) from the helpers
below; this module knows no method (it sits below them): `videojepa.methods.accounting` adds up what a
config's method declares, per step, per stage and per plan. `flops_with_attention` adds the attention products (QK^T
and AV, 4 * seq * width FLOPs per token per layer forward, x3 when trained), which matter most for the
predictor's full-length sequences. `measured_masks=True` replaces the paper's 0.9 masking ratio with
the lengths the configured mask sampler really produces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from videojepa.config.schema import PretrainConfig
from videojepa.masks import build_mask_generators, mask_statistics, token_grid
from videojepa.models.registry import non_embedding_parameters

PAPER_MASK_RATIO = 0.9


@dataclass
class Component:
    name: str
    params: int
    tokens: float  # D: tokens processed per step
    trained: bool
    attention_flops_per_token: float  # forward, summed over layers

    @property
    def flops(self) -> float:
        return (6 if self.trained else 2) * self.params * self.tokens

    @property
    def attention_flops(self) -> float:
        return (3 if self.trained else 1) * self.attention_flops_per_token * self.tokens


@dataclass
class StepShape:
    """What one optimiser step feeds the networks: clips, tokens per clip, (context, target) per mask."""

    batch: int
    tokens_per_clip: int
    lengths: list[tuple[float, float]]


def _attention_per_token(depth: int, width: int, seq: float) -> float:
    return 4.0 * seq * width * depth


def _mean_attention(net: nn.Module, seqs: list[float]) -> float:
    """Attention FLOPs per token, averaged over sequences of the given lengths weighted by their tokens."""
    depth, width = net.arch["depth"], net.arch["embed_dim"]
    return sum(_attention_per_token(depth, width, s) * s for s in seqs) / sum(seqs)


def context_encoder_flops(encoder: nn.Module, shape: StepShape, name: str = "encoder") -> Component:
    """A trained encoder that sees each mask's context tokens."""
    contexts = [c for c, _ in shape.lengths]
    return Component(
        name, non_embedding_parameters(encoder), sum(contexts) * shape.batch, True, _mean_attention(encoder, contexts)
    )


def head_flops(name: str, head: nn.Module, shape: StepShape) -> Component:
    """A trained predictor or decoder on each mask's context + target tokens (all its parameters count)."""
    seqs = [c + t for c, t in shape.lengths]
    return Component(
        name, sum(p.numel() for p in head.parameters()), sum(seqs) * shape.batch, True, _mean_attention(head, seqs)
    )


def forward_flops(name: str, encoder: nn.Module, shape: StepShape) -> Component:
    """A network run forward only, once per clip over all its tokens (EMA target, frozen teacher)."""
    n = shape.tokens_per_clip
    return Component(
        name,
        non_embedding_parameters(encoder),
        n * shape.batch,
        False,
        _attention_per_token(encoder.arch["depth"], encoder.arch["embed_dim"], n),
    )


def mask_lengths(cfg: PretrainConfig, measured: bool, batches: int = 20, seed: int = 0) -> list[tuple[float, float]]:
    """(context, target) tokens per clip for each mask generator."""
    n = math.prod(token_grid(cfg))
    if not measured:
        return [((1 - PAPER_MASK_RATIO) * n, PAPER_MASK_RATIO * n) for _ in cfg.masks]
    stats = mask_statistics(build_mask_generators(cfg), min(cfg.train.batch_size, 64), batches, seed)
    return [(s["context_tokens"], s["target_tokens"]) for s in stats]


def step_shape(
    cfg: PretrainConfig, measured_masks: bool = False, lengths: list[tuple[float, float]] | None = None
) -> StepShape:
    """What one optimiser step of `cfg` feeds its networks. `lengths` gives (context, target) tokens per clip for
    each mask generator directly (e.g. those of the batch being timed); otherwise they come from the paper's rule
    or, with `measured_masks`, from the sampler."""
    return StepShape(cfg.train.batch_size, math.prod(token_grid(cfg)), lengths or mask_lengths(cfg, measured_masks))
