"""Memory estimator: accelerator bytes per rank that one pretraining step of a config needs.

Built from the architectures alone (on the meta device, like the FLOPs accountant) and the method's
declared networks (`Method.networks`: attribute -> "trained" / "ema" / "frozen"); it never names a method.

Precision assumptions (`train.precision`; `auto` counts as bf16, what it resolves to on CUDA):
- trained networks keep fp32 master weights, fp32 gradients and two fp32 AdamW moments (16 bytes per
  parameter); bf16/fp16 autocast only changes the dtype the matmuls run in;
- an EMA copy is fp32 (4 bytes per parameter) and is placed like the network it follows;
- a frozen teacher is held in bf16 (2 bytes; 4 under fp32) and replicated on every rank, or sharded
  like the trained networks when `method.teacher.shard` is true (issue 14, item 1).

Per rank, DDP replicates everything (its gradient buckets are the gradients themselves: the trainer
wraps with `gradient_as_bucket_view=True`, so there is no second fp32 copy) and adds, under autocast, the
bf16 copies of the trained weights that autocast caches through the forward (autograd keeps them into backward without
checkpointing). FSDP2's bf16 parameters need no such copies. FSDP2 (bf16 parameters, fp32 reduction)
divides weights, gradients, AdamW states and the EMA by the world size and adds an unsharded working
set: each sharded network's root parameters, the largest block gathered twice (current + prefetched)
and that block's unsharded gradients (bf16, and their fp32 copy for the reduce-scatter).

Activations are what autograd saves for backward, per token of each transformer block (c = bytes of the
compute dtype: 4 in fp32, 2 under autocast; n = bytes of a LayerNorm input: 4 in fp32 and under CUDA's
autocast, which runs LayerNorm in fp32, c under CPU's autocast):

    LayerNorm x2      inputs 2 * n*d, fp32 mean and rstd 2 * 8
    qkv, fc1 linears  inputs 2 * c*d
    attention kernel  the qkv output 3 * c*d (q/k/v are views of it), output c*d (also the proj
                      input), fp32 log-sum-exp 4 per head
    RoPE              rotated q and k 2 * c*d; under autocast each block's cos/sin copies 2 * c*hd
                      (in fp32 the tables are shared: 2 * 4*hd once per network forward)
    GELU, fc2         the hidden layer twice, 2 * c*m

i.e. 2nd + 6cd + 2cm + 4h + 16 bytes per token (+ RoPE): 64d + 4h + 16 in fp32 and 36d + 4h + 16 under
CUDA bf16 autocast, with m = 4d and sin-cos positions. Around the blocks: the encoder's tubelet-embedding
input and output, its token index and final LayerNorm; the head's input, final LayerNorm and output
projection input; what the method's loss keeps (fp32 tensors of the predictions' size, counted by running
the loss). The networks that run with grad are the method's `meta_networks(cfg)`: the encoder on each
mask's context tokens, the head on each mask's context + target tokens. With activation checkpointing
(per block, non-reentrant) autograd keeps each block's input (the residual stream, in the compute dtype:
c*d per token) and, during backward, one block's recomputed activations: the peak adds the largest
block's set. The attention kernel is the fused one (flash / memory-efficient SDPA) that accelerators run:
no seq x seq matrix is saved. Left out: the transient gradients of activations in backward, allocator
fragmentation, the CUDA context (~0.5-1 GB), communication buffers, the
no-grad target network's per-block buffers (freed before the trained networks run). The total adds the
gradients to the activation peak: exact with gradient accumulation (they live across micro-steps), an upper
bound by up to the gradients' size otherwise (the trainer frees them between steps, and backward allocates
them as it frees activations).
Validated on CPU against `torch.autograd.graph.saved_tensors_hooks` (tests/test_memory.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from videojepa.config.loader import stage_config
from videojepa.config.schema import PlanConfig, PretrainConfig
from videojepa.errors import UserError
from videojepa.flops import StepShape, mask_lengths
from videojepa.masks import token_grid
from videojepa.methods import get_method
from videojepa.methods.base import Method

CARDS_GB = (24, 40, 80, 141)  # the cards' names; their memory is taken as that many GiB
GIB = 2**30
RESERVE = 1 * GIB  # the CUDA context, cuBLAS/NCCL workspaces: not part of the estimate, kept free on each card
PARALLEL = ("ddp", "fsdp2")
FP32 = 4
ADAMW_STATES = 2  # exp_avg and exp_avg_sq, fp32


@dataclass
class Network:
    """One network of a method: its declared role and the architecture it is built with (meta device)."""

    name: str
    role: str
    module: nn.Module

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    @property
    def largest_block_params(self) -> int:
        return max((sum(p.numel() for p in b.parameters()) for b in self.module.blocks), default=0)

    @property
    def root_params(self) -> int:
        """Parameters outside the transformer blocks (embeddings, final norm, head): FSDP2's root group."""
        return self.params - sum(p.numel() for p in self.module.blocks.parameters())


def compute_bytes(cfg: PretrainConfig) -> int:
    """Bytes per element of what the matmuls read and save: 4 in fp32, 2 under bf16/fp16 autocast."""
    return FP32 if cfg.train.precision == "fp32" else 2


def block_shape(net: nn.Module) -> tuple[int, int, int, bool]:
    """(width d, heads h, MLP hidden m, uses RoPE) of a network's transformer blocks."""
    block = net.blocks[0]
    return (block.norm1.normalized_shape[0], block.attn.num_heads, block.mlp.fc1.out_features, net.pos.rope is not None)


def norm_bytes(c: int, device: str) -> int:
    """Bytes per element of a LayerNorm's saved input: CUDA's autocast runs LayerNorm in fp32 (it saves an
    fp32 copy of its input), CPU's autocast runs it in the input's (compute) dtype."""
    return FP32 if device == "cuda" else c


def block_bytes_per_token(dim: int, heads: int, mlp_hidden: int, rope: bool, c: int, device: str = "cuda") -> float:
    """Bytes one pre-norm block saves for backward per token (see the module docstring)."""
    norms = 2 * (norm_bytes(c, device) * dim + 2 * FP32)  # inputs, fp32 mean and rstd
    linear_inputs = 2 * c * dim  # qkv and fc1 read their LayerNorm's output
    attention = 3 * c * dim + c * dim + FP32 * heads  # q/k/v (views of the qkv output), output, log-sum-exp
    mlp = 2 * c * mlp_hidden  # GELU input and fc2 input
    total = norms + linear_inputs + attention + mlp
    if rope:
        total += 2 * c * dim  # rotated q and k are new tensors
        if c != FP32:  # each block casts the fp32 cos/sin tables to the compute dtype
            total += 2 * c * (dim // heads)
    return total


def rope_table_bytes_per_token(net: nn.Module) -> float:
    """The fp32 cos/sin tables one forward builds (shared by its blocks); 0 without RoPE."""
    dim, heads, _, rope = block_shape(net)
    return 2 * FP32 * (dim // heads) if rope else 0.0


@dataclass
class Activations:
    """Bytes of activations for one rank's micro-batch."""

    saved: float  # what autograd holds at the end of the forward (the backward starts from it)
    recompute: float  # extra held while one checkpointed block is recomputed in backward (0 without AC)
    parts: dict = field(default_factory=dict)

    @property
    def peak(self) -> float:
        return self.saved + self.recompute


def blocks_saved(net: nn.Module, tokens: float, c: int, checkpointing: bool, device: str) -> tuple[float, float]:
    """(saved, largest single block) bytes of a network's blocks over `tokens` tokens of one forward."""
    dim, heads, hidden, rope = block_shape(net)
    per_block = block_bytes_per_token(dim, heads, hidden, rope, c, device) * tokens
    # the fp32 cos/sin tables outlive the forward when blocks save them as they are (fp32) or when
    # checkpointing keeps them as block inputs; under autocast without it only the per-block casts stay
    tables = rope_table_bytes_per_token(net) * tokens if (rope and (checkpointing or c == FP32)) else 0.0
    if checkpointing:  # each block keeps its input: the residual stream, in the compute dtype (the
        return len(net.blocks) * c * dim * tokens + tables, per_block  # embeddings are linear outputs)
    return len(net.blocks) * per_block + tables, per_block


def saved_bytes(fn, exclude=()) -> int:
    """Bytes of the distinct storages autograd saves for backward while `fn()` runs (those of `exclude`,
    e.g. parameters, left out); the measurement the estimate is validated against."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def loss_saved_copies(cfg: PretrainConfig) -> int:
    """How many fp32 tensors of the predictions' size the method's loss keeps for backward.

    Found by running the method's own `loss` on a tiny CPU example with a bare instance (the base
    initialiser: its config, no networks): an L1 loss keeps the difference (1), a squared error the
    predictions and the targets (2).
    """
    cls = get_method(cfg.method.name)
    bare = cls.__new__(cls)
    Method.__init__(bare, cfg)
    pred = torch.randn(1, 4, 8, device="cpu", requires_grad=True)
    target = torch.randn(1, 4, 8, device="cpu")
    return round(saved_bytes(lambda: bare.loss(pred, target)) / (pred.numel() * FP32))


def activation_bytes(
    encoder: nn.Module,
    head: nn.Module,
    shape: StepShape,
    c: int,
    checkpointing: bool,
    device: str = "cuda",
    loss_copies: int = 1,
) -> Activations:
    """What autograd saves when the encoder runs on each mask's context and the head on context + target.

    `shape.batch` is the rank's micro-batch; `shape.lengths` the (context, target) tokens per clip per mask.
    """
    b, n = shape.batch, shape.tokens_per_clip
    enc_dim, head_dim, out_dim = encoder.embed_dim, head.blocks[0].norm1.normalized_shape[0], head.head.out_features
    patch_in = encoder.patch_embed.weight[0].numel()
    parts = {"embedding": b * n * (c * patch_in + c * enc_dim)}  # tubelets in, tokens out (kept by the gather)
    encoder_blocks = head_blocks = around = 0.0
    largest = 0.0
    for context, target in shape.lengths:
        saved, block = blocks_saved(encoder, b * context, c, checkpointing, device)
        encoder_blocks += saved
        largest = max(largest, block)
        saved, block = blocks_saved(head, b * (context + target), c, checkpointing, device)
        head_blocks += saved
        largest = max(largest, block)
        ln = norm_bytes(c, device)
        around += b * context * (8 + ln * enc_dim + 2 * FP32)  # token index (int64), final LayerNorm
        around += b * context * c * enc_dim  # the head's input projection reads the encoder output
        # the head's final LayerNorm (its input is a slice of the whole sequence, which stays alive)
        around += b * (context + target) * ln * head_dim + b * target * 2 * FP32
        # the output projection's input; what the loss keeps (fp32 tensors of the predictions' size)
        around += b * target * (c * head_dim + loss_copies * FP32 * out_dim)
    parts.update(encoder_blocks=encoder_blocks, head_blocks=head_blocks, around_blocks=around)
    return Activations(sum(parts.values()), largest if checkpointing else 0.0, parts)


def inputs_and_targets(cfg: PretrainConfig, encoder: nn.Module, head: nn.Module, shape: StepShape) -> float:
    """Kept through the step besides saved activations: the fp32 input clips, and the regression targets of
    every token (computed first, without grad, in fp32, as wide as the head's predictions)."""
    clips = shape.batch * cfg.data.frames_per_clip * cfg.data.crop_size**2 * encoder.in_chans * FP32
    return clips + shape.batch * shape.tokens_per_clip * head.head.out_features * FP32


def linear_weights(net: nn.Module, blocks: bool = True) -> int:
    """Elements of the nn.Linear weights a network multiplies by (inside its blocks or only outside them).

    The tubelet embedding is left out: its weight is used through a view (not cached by autocast), and its
    input (pixels) needs no gradient, so autograd keeps no copy of it.
    """
    block_ids = {id(m) for m in net.blocks.modules()}
    total = 0
    for module in net.modules():
        if isinstance(module, nn.Linear) and (blocks or id(module) not in block_ids):
            total += module.weight.numel()
    return total


def method_networks(cfg: PretrainConfig) -> tuple[list[Network], nn.Module, nn.Module]:
    """The method's declared networks with their roles, and the (encoder, head) that run with grad."""
    cls = get_method(cfg.method.name)
    with torch.device("meta"):
        encoder, head = cls.meta_networks(cfg)
        target = cls.target_architecture(cfg)
    built = {"encoder": encoder, cls.head_attr: head}
    networks = []
    for attr, role in cls.networks.items():
        module = built.get(attr) if role == "trained" else target
        if module is None:
            raise UserError(
                f"method {cfg.method.name!r}: cannot tell the architecture of its {role} network "
                f"{attr!r} (meta_networks gives the encoder and head, target_architecture the rest)"
            )
        networks.append(Network(attr, role, module))
    return networks, encoder, head


def per_rank_batch(cfg: PretrainConfig, world_size: int) -> int:
    split = world_size * cfg.train.accum_steps
    if world_size < 1 or cfg.train.batch_size % split:
        raise UserError(
            f"train.batch_size={cfg.train.batch_size} does not split into --world-size {world_size} x "
            f"train.accum_steps={cfg.train.accum_steps} equal micro-batches"
        )
    return cfg.train.batch_size // split


def frozen_sharded(cfg: PretrainConfig) -> bool:
    return get_method(cfg.method.name).shard_frozen(cfg)


def layout(
    networks: list[Network], parallel: str, world: int, c: int, shard_frozen: bool, checkpointing: bool
) -> dict[str, float]:
    """Bytes per rank of everything but activations, for DDP or FSDP2 at `world` ranks."""
    trained = [n for n in networks if n.role == "trained"]
    ema = [n for n in networks if n.role == "ema"]
    frozen = [n for n in networks if n.role == "frozen"]
    n_trained = sum(n.params for n in trained)
    frozen_bytes = FP32 if c == FP32 else 2
    shard = world if parallel == "fsdp2" else 1
    out = {
        "parameters": FP32 * n_trained / shard,
        "gradients": FP32 * n_trained / shard,
        "adamw_states": ADAMW_STATES * FP32 * n_trained / shard,
        "ema": FP32 * sum(n.params for n in ema) / shard,
        "frozen": frozen_bytes * sum(n.params for n in frozen) / (shard if shard_frozen else 1),
    }
    if parallel == "ddp":
        # autocast caches a bf16 copy of every trained weight until the forward's autocast region ends (with
        # or without checkpointing), at the moment the saved activations peak; without checkpointing
        # autograd keeps them into backward as well
        copies = sum(linear_weights(n.module) for n in trained)
        out["autocast_weight_copies"] = 0.0 if c == FP32 else c * copies
    else:
        sharded = trained + ema + (frozen if shard_frozen else [])
        gathered = max(n.largest_block_params for n in sharded)  # current + prefetched block, compute dtype
        with_grads = max(n.largest_block_params for n in trained)
        grads = c + (FP32 if c != FP32 else 0)  # computed in the compute dtype, reduced in fp32
        out["fsdp2_unsharded"] = c * sum(n.root_params for n in sharded) + 2 * c * gathered + grads * with_grads
    return out


def usable_bytes(card_gb: int) -> float:
    return card_gb * GIB - RESERVE


def fits(total: float) -> dict[str, bool]:
    """Card name -> whether the estimate fits in its memory less the reserve."""
    return {f"{gb} GB": total <= usable_bytes(gb) for gb in CARDS_GB}


def stage_memory(
    cfg: PretrainConfig, world_size: int = 1, name: str | None = None, lengths: list[tuple[float, float]] | None = None
) -> dict:
    """The per-rank memory document of one pretraining config (see the module docstring). `lengths`:
    (context, target) tokens per clip for each mask generator, e.g. those of a batch being measured
    (default: the mask sampler's mean lengths)."""
    networks, encoder, head = method_networks(cfg)
    batch = per_rank_batch(cfg, world_size)
    c = compute_bytes(cfg)
    copies = loss_saved_copies(cfg)
    shape = StepShape(batch, math.prod(token_grid(cfg)), lengths or mask_lengths(cfg, measured=True))
    kept = inputs_and_targets(cfg, encoder, head, shape)
    result = {
        "name": name or cfg.method.name,
        "method": cfg.method.name,
        "world_size": world_size,
        "batch_per_rank": batch,
        "precision": cfg.train.precision,
        "compute_bytes": c,
        "mask_lengths": [list(pair) for pair in shape.lengths],
        "tokens_per_clip": shape.tokens_per_clip,
        "networks": [{"name": n.name, "role": n.role, "params": n.params} for n in networks],
        "frozen_sharded": frozen_sharded(cfg),
    }
    for checkpointing in (False, True):
        act = activation_bytes(encoder, head, shape, c, checkpointing, "cuda", copies)
        key = "checkpointing" if checkpointing else "no_checkpointing"
        result[f"activations_{key}"] = {
            "saved": act.saved,
            "recompute": act.recompute,
            "inputs_and_targets": kept,
            "peak": act.peak + kept,
            **act.parts,
        }
    for parallel in PARALLEL:
        shard_frozen = parallel == "fsdp2" and result["frozen_sharded"]
        result[parallel] = {}
        for checkpointing in (False, True):
            key = "checkpointing" if checkpointing else "no_checkpointing"
            states = layout(
                networks, parallel, world_size if parallel == "fsdp2" else 1, c, shard_frozen, checkpointing
            )
            total = sum(states.values()) + result[f"activations_{key}"]["peak"]
            result[parallel][key] = {
                **states,
                "activations": result[f"activations_{key}"]["peak"],
                "total": total,
                "fits": fits(total),
            }
    return result


def memory_report(config, world_size: int = 1) -> dict:
    """The `videojepa flops --memory --json` document for a pretraining or a plan config."""
    if isinstance(config, PlanConfig):
        stages = [stage_memory(stage_config(s), world_size, s.name) for s in config.stages]
    else:
        stages = [stage_memory(config, world_size)]
    return {"world_size": world_size, "cards_gb": list(CARDS_GB), "stages": stages}
