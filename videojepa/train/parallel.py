"""How the trainer spreads a method over ranks: DDP (the default) or FSDP2 (`train.parallel=fsdp2`).

DDP replicates the whole method and all-reduces gradients during backward. FSDP2 (`fully_shard`) shards
each network the method declares, per transformer block and then as a whole, over a 1-D mesh of all ranks,
or a 2-D HSDP mesh (`train.replicas` > 1: replicate across groups, shard within each):
- trained networks: bf16 parameters in compute and fp32 gradient reduction under `precision=bf16`;
- EMA targets: sharded exactly like the network they follow and kept in fp32, so the EMA update runs on
  the local shards with no communication; `check_ema_alignment` refuses any other layout at setup;
- frozen networks (a teacher): replicated, in bf16 under `precision=bf16` (so under DDP and on one device
  too), unless the method asks for them to be sharded (`Method.shard_frozen(cfg)`): forward-only FSDP2 modules.
The methods call `embed` and `forward_tokens` rather than `forward`: both are registered with FSDP2 so they
gather the parameters, and a network that only runs forward reshards as soon as its forward ends.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from videojepa.errors import UserError
from videojepa.models.blocks import Block
from videojepa.models.vit import VisionTransformer

ENCODER_ENTRY_POINTS = ("embed", "forward_tokens")  # what the methods call besides forward


def device_mesh(world_size: int, replicas: int, device_type: str):
    from torch.distributed.device_mesh import init_device_mesh

    if world_size % replicas:
        raise UserError(f"train.replicas={replicas} must divide the {world_size} processes")
    if replicas == 1:
        return init_device_mesh(device_type, (world_size,), mesh_dim_names=("shard",))
    return init_device_mesh(device_type, (replicas, world_size // replicas), mesh_dim_names=("replicate", "shard"))


def shard_network(network: nn.Module, mesh, precision: str, forward_only: bool) -> None:
    """fully_shard each Block of `network`, then the network itself (its embedding, norms, heads).

    Under bf16 every network computes with bf16 copies of its parameters while the shards stay fp32 (the EMA
    update and AdamW see fp32); trained networks reduce their gradients in fp32.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    bf16 = precision == "bf16"
    policy = MixedPrecisionPolicy(
        param_dtype=torch.bfloat16 if bf16 else None, reduce_dtype=torch.float32 if bf16 and not forward_only else None
    )
    for module in network.modules():
        if isinstance(module, Block):
            fully_shard(module, mesh=mesh, mp_policy=policy)
    # A forward-only root reshards right after its forward (FSDP2 keeps a root unsharded by default,
    # expecting a backward that never comes for an EMA target or a teacher).
    fully_shard(network, mesh=mesh, mp_policy=policy, reshard_after_forward=True if forward_only else None)
    if isinstance(network, VisionTransformer):
        for name in ENCODER_ENTRY_POINTS:
            register_fsdp_forward_method(network, name)


def is_sharded(network: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(network, FSDPModule)


def check_ema_alignment(target: nn.Module, source: nn.Module, name: str) -> None:
    """The EMA update pairs parameters by position and runs on local shards: layouts must match exactly."""
    from torch.distributed.tensor import DTensor

    def layout(p):
        if isinstance(p, DTensor):
            return tuple(p.shape), tuple(p.placements), tuple(p.to_local().shape), p.device_mesh
        return tuple(p.shape), None, tuple(p.shape), None

    pairs = list(zip(target.named_parameters(), source.named_parameters(), strict=False))
    if len(list(target.parameters())) != len(list(source.parameters())):
        raise UserError(
            f"EMA target '{name}' has {len(list(target.parameters()))} parameters, the network it "
            f"follows {len(list(source.parameters()))}"
        )
    for (tn, tp), (sn, sp) in pairs:
        if tn != sn or layout(tp) != layout(sp):
            raise UserError(
                f"EMA target '{name}' is not sharded like the network it follows: {tn} "
                f"{layout(tp)[:3]} vs {sn} {layout(sp)[:3]}"
            )


def wrap_for_training(method, cfg, dist_info) -> nn.Module:
    """The module the trainer calls: the method itself, DDP around it, or the method with FSDP2 networks (under
    any torchrun launch, one process included, so FSDP2's own cost can be measured on one GPU).

    Under `precision=bf16` a frozen network that stays whole (replicated) is stored in bf16: it only runs
    forward under autocast, so this halves its memory and changes no result of the autocast matmuls.
    """
    fsdp2 = cfg.train.parallel == "fsdp2" and dist_info.grouped
    for attr, role in method.networks.items():
        if role == "frozen" and cfg.train.precision == "bf16" and not (fsdp2 and method.shard_frozen(cfg)):
            getattr(method, attr).to(torch.bfloat16)
    if not fsdp2:
        if not dist_info.enabled:
            return method
        from torch.nn.parallel import DistributedDataParallel

        # the gradients are views into DDP's all-reduce buckets: no second fp32 copy of them, no copy in and out
        return DistributedDataParallel(method, gradient_as_bucket_view=True)
    mesh = device_mesh(dist_info.world_size, cfg.train.replicas, dist_info.device.type)
    for attr, role in method.networks.items():
        if role != "frozen" or method.shard_frozen(cfg):
            shard_network(getattr(method, attr), mesh, cfg.train.precision, forward_only=role != "trained")
    for target, source in method.ema_of.items():
        check_ema_alignment(getattr(method, target), getattr(method, source), target)
    return method


def gradient_sync(model: nn.Module, method, enabled: bool):
    """A context in which backward does (or, on inner accumulation micro-steps, does not) reduce gradients."""
    if enabled:
        return contextlib.nullcontext()
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        return model.no_sync()
    sharded = [n for n in method.modules_with_role("trained") if is_sharded(n)]
    return _fsdp_no_sync(sharded)


@contextlib.contextmanager
def _fsdp_no_sync(networks: list[nn.Module]):
    for network in networks:
        network.set_requires_gradient_sync(False, recurse=True)
    try:
        yield
    finally:
        for network in networks:
            network.set_requires_gradient_sync(True, recurse=True)
