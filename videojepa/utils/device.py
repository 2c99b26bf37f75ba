"""Turning a user's device setting into a torch device, with one-line errors."""

from __future__ import annotations

import torch

from videojepa.errors import UserError


def resolve_device(spec: str, setting: str = "device") -> torch.device:
    """`auto` -> cuda when available, else cpu; otherwise a torch device name that this machine has.

    `setting` names the option in error messages (e.g. "run.device", "--device")."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UserError(f"{setting}={spec!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{setting}={spec} but this machine has no CUDA device; use auto or cpu")
    return device
