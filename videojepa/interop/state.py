"""Strict consumption of a foreign state dict: every source tensor is used, or the conversion fails.

    src = SourceState(tensors, "vitl.pt [target_encoder]")
    w = src.take("blocks.0.attn.qkv.weight", (3 * d, d))   # None if missing or mis-shaped (both recorded)
    src.skip("decoder.")                                     # dropped on purpose, by prefix, and reported
    src.finish()                                             # UserError naming every missing/unexpected/mis-shaped key

The official loaders load non-strictly, so a renamed key silently leaves a randomly initialised
weight; here a renamed key shows up twice (missing under its expected name, unexpected under its own).
"""

from __future__ import annotations

import torch

from videojepa.errors import UserError


class SourceState:
    def __init__(self, tensors: dict[str, torch.Tensor], origin: str):
        self.tensors, self.origin = dict(tensors), origin
        self.used: set[str] = set()
        self.skipped: list[str] = []
        self.missing: list[str] = []
        self.misshaped: list[str] = []

    def has(self, key: str) -> bool:
        return key in self.tensors

    def take(self, key: str, shape: tuple[int, ...] | None = None) -> torch.Tensor | None:
        if key not in self.tensors:
            self.missing.append(key)
            return None
        self.used.add(key)
        tensor = self.tensors[key]
        if shape is not None and tuple(tensor.shape) != tuple(shape):
            self.misshaped.append(f"{key} {tuple(tensor.shape)}, expected {tuple(shape)}")
            return None
        return tensor.float()

    def skip(self, prefix: str) -> list[str]:
        """Drop every tensor under `prefix` on purpose (e.g. a pixel decoder); returns their names."""
        dropped = sorted(k for k in self.tensors if k.startswith(prefix) and k not in self.used)
        self.used.update(dropped)
        self.skipped.extend(dropped)
        return dropped

    def finish(self) -> None:
        unexpected = sorted(set(self.tensors) - self.used)
        problems = []
        if self.missing:
            problems.append(f"missing {len(self.missing)}: {', '.join(self.missing)}")
        if unexpected:
            problems.append(f"unexpected {len(unexpected)}: {', '.join(unexpected)}")
        if self.misshaped:
            problems.append(f"wrong shape {len(self.misshaped)}: {'; '.join(self.misshaped)}")
        if problems:
            raise UserError(
                f"{self.origin}: cannot convert, the tensors do not match the expected layout ("
                + "; ".join(problems)
                + ")"
            )


def strip_prefixes(tensors: dict[str, torch.Tensor], prefixes=("module.", "backbone.")) -> dict[str, torch.Tensor]:
    """Remove wrapper prefixes (DDP's `module.`, the multi-mask wrapper's `backbone.`) in any order."""
    out = {}
    for key, value in tensors.items():
        changed = True
        while changed:
            changed = False
            for prefix in prefixes:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out
