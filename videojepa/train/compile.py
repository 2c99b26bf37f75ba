"""`train.compile`: compile every transformer block of a method's networks.

The methods call `encoder.embed()` and `encoder.forward_tokens()`, not `forward()`, so compiling a whole
network's `forward` would leave the work uncompiled. The blocks are where the FLOPs are, and every entry
point reaches them through `Block.__call__`; `nn.Module.compile` compiles a block in place (its parameter
names do not change, so checkpoints and the optimiser are unaffected). `dynamic=True` makes the token count
symbolic, so the varying context lengths of the mask sampler reuse one graph instead of recompiling.
Apply after activation checkpointing is set and before DDP / FSDP2 wrap the networks.
"""

from __future__ import annotations

from torch import nn

from videojepa.models.blocks import Block


def compile_blocks(networks: list[nn.Module], backend: str = "inductor") -> int:
    """Compile each Block in `networks` in place; returns how many were compiled."""
    count = 0
    for network in networks:
        for module in network.modules():
            if isinstance(module, Block):
                module.compile(backend=backend, dynamic=True)
                count += 1
    return count
