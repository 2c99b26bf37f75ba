"""Position encodings for a (time, height, width) token grid.

Tokens are numbered t * (H * W) + h * W + w, the order of `x.flatten(2)` after the tubelet
Conv3d. Both encodings take token ids, so dropped (masked) tokens need no special case.
"""

from __future__ import annotations

import torch


def token_coords(ids: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Token ids (...,) -> float coordinates (..., 3) as (t, h, w)."""
    _, height, width = grid
    t = ids // (height * width)
    h = (ids % (height * width)) // width
    w = ids % width
    return torch.stack([t, h, w], dim=-1).float()


def _sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    omega = torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    angles = pos.double()[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_3d(embed_dim: int, grid: tuple[int, int, int]) -> torch.Tensor:
    """Fixed 3D sin-cos table (T*H*W, embed_dim), as V-JEPA builds it.

    Each axis gets an equal share of channels (rounded up to an even count, then the
    concatenation [time, height, width] is cut to `embed_dim`).
    """
    per_axis = 2 * -(-embed_dim // 6)  # ceil(dim / 6) * 2
    coords = token_coords(torch.arange(grid[0] * grid[1] * grid[2]), grid)
    table = torch.cat([_sincos_1d(per_axis, coords[:, axis]) for axis in range(3)], dim=1)
    return table[:, :embed_dim].float()


def sincos_flat(embed_dim: int, num_tokens: int) -> torch.Tensor:
    """VideoMAE's fixed table (num_tokens, embed_dim): ONE position per token, its flat index.

    Channel j of token n is sin (even j) or cos (odd j) of n / 10000^(2 * (j // 2) / embed_dim):
    interleaved channels and no notion of time, height or width, unlike `sincos_3d`.
    """
    pos = torch.arange(num_tokens, dtype=torch.float64)[:, None]
    channel = torch.arange(embed_dim)
    angles = pos / 10000.0 ** (2 * (channel // 2).double() / embed_dim)
    return torch.where(channel % 2 == 0, angles.sin(), angles.cos()).float()


class Rope3D:
    """3D rotary embedding with V-JEPA 2's channel split.

    The head dimension is split into three equal even parts rotated by the time, height and
    width coordinate (2 * ((head_dim // 3) // 2) channels each); leftover channels are not
    rotated. Channel pairs (2i, 2i+1) are rotated by angle pos * base^(-i / (part / 2)).

    `vjepa2_layout=True` reproduces the released V-JEPA 2 code instead, whose angle table is
    the half-size frequency list repeated twice rather than interleaved, so the two channels
    of a pair see different angles (not a rotation, and not purely relative). Its checkpoints
    were trained that way, so converted V-JEPA 2 weights need it to give the same features.
    """

    def __init__(self, head_dim: int, base: float = 10000.0, vjepa2_layout: bool = False):
        self.head_dim, self.vjepa2_layout = head_dim, vjepa2_layout
        self.axis_dim = 2 * ((head_dim // 3) // 2)
        if self.axis_dim == 0:
            raise ValueError(f"RoPE needs a head dimension of at least 6, got {head_dim}")
        half = self.axis_dim // 2
        self.omega = 1.0 / base ** (torch.arange(half, dtype=torch.float64) / half)
        self._omega_on: dict[torch.device, torch.Tensor] = {}  # the frequencies already copied to each device

    def omega_on(self, device: torch.device) -> torch.Tensor:
        """The frequency list on `device`, copied there once (a copy per forward is a host-to-device transfer,
        which waits for the GPU, in every step)."""
        if device not in self._omega_on:
            self._omega_on[device] = self.omega.to(device)
        return self._omega_on[device]

    def tables(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """coords (B, N, 3) -> cos, signed sin (B, 1, N, head_dim) in fp32, once per forward."""
        omega = self.omega_on(coords.device)
        parts = []
        for axis in range(3):
            angle = coords[..., axis, None].double() * omega
            parts.append(torch.cat([angle, angle], dim=-1) if self.vjepa2_layout else angle.repeat_interleave(2, -1))
        angles = torch.cat(parts, dim=-1)
        pad = self.head_dim - angles.shape[-1]
        cos, sin = angles.cos(), angles.sin()
        if pad:  # unrotated channels: cos 1, sin 0
            cos = torch.cat([cos, cos.new_ones(*cos.shape[:-1], pad)], dim=-1)
            sin = torch.cat([sin, sin.new_zeros(*sin.shape[:-1], pad)], dim=-1)
        # the sign of the rotation's sin term, folded in once here rather than in every layer
        signed_sin = torch.stack([-sin[..., 0::2], sin[..., 1::2]], dim=-1).flatten(-2)
        return cos.unsqueeze(1).float(), signed_sin.unsqueeze(1).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of x (B, heads, N, D): (a, b) -> (a cos - b sin, b cos + a sin).

    With `Rope3D.tables`' signed sin (-sin, +sin per pair) this is x * cos + swap(x) * signed_sin:
    one copy (the pair swap) and a fused multiply-add per call.
    """
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    return torch.addcmul(x * cos.to(x.dtype), swapped, signed_sin.to(x.dtype))
