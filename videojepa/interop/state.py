"""Strict consumption of a foreign state dict: every source tensor is used, or the conversion fails.

    src = SourceState(tensors, "vitl.pt [target_encoder]")
    w = src.take("blocks.0.attn.qkv.weight", (3 * d, d))   # None if missing or mis-shaped (both recorded)
    src.skip("decoder.")                                     # dropped on purpose, by prefix, and reported
    src.finish()                                             # UserError: counts and examples of what does not fit

The official loaders load non-strictly, so a renamed key silently leaves a randomly initialised
weight; here a renamed key shows up twice (missing under its expected name, unexpected under its own).
The error stays readable for a file of another architecture (hundreds of keys off): per kind of problem
the count, the first few names and the top-level groups the others fall in, and a `hint` from the reader
(e.g. which model the file holds and what to do with it).
"""

from __future__ import annotations

import torch

from videojepa.errors import UserError

EXAMPLES = 5  # names shown per kind of problem


class SourceState:
    def __init__(self, tensors: dict[str, torch.Tensor], origin: str, prefix: str = ""):
        """`prefix`: what the tensors' names started with in the file (stripped here, shown in errors)."""
        self.tensors, self.origin, self.prefix = dict(tensors), origin, prefix
        self.hint: str | None = None  # said after the list of problems (what the file is, what to do)
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

    def unexpected(self) -> list[str]:
        return sorted(set(self.tensors) - self.used)

    def finish(self) -> None:
        unexpected = self.unexpected()
        problems = []
        if self.missing:
            problems.append(summarize("missing", [self.prefix + k for k in self.missing]))
        if unexpected:
            problems.append(summarize("unexpected", [self.prefix + k for k in unexpected]))
        if self.misshaped:
            problems.append(summarize("wrong shape", [self.prefix + k for k in self.misshaped], "; "))
        if problems:
            raise UserError(
                f"{self.origin}: cannot convert, the tensors do not match the expected layout ("
                + "; ".join(problems)
                + ")"
                + (f". {self.hint}" if self.hint else "")
            )


def summarize(what: str, names: list[str], sep: str = ", ") -> str:
    """ "missing 3: a, b, c" or, for many, "missing 167: a, b, c, d, e and 162 more (vjepa2.: 150, pooler.: 17)"."""
    if len(names) <= EXAMPLES:
        return f"{what} {len(names)}: {sep.join(names)}"
    groups: dict[str, int] = {}
    for name in names:
        head = name.split(".")[0] + ("." if "." in name else "")
        groups[head] = groups.get(head, 0) + 1
    by_group = ", ".join(f"{g}: {n}" for g, n in sorted(groups.items(), key=lambda kv: -kv[1]))
    return f"{what} {len(names)}: {sep.join(names[:EXAMPLES])} and {len(names) - EXAMPLES} more ({by_group})"


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
