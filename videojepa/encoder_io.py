"""Encoder weights as self-describing safetensors files.

    save_encoder(encoder, "run/encoder.safetensors", data={"frames_per_clip": 16, ...})
    encoder = load_encoder("run/encoder.safetensors")   # or the run directory

The file's metadata carries the architecture (width, depth, heads, patch, tubelet, position
encoding) and the data conventions the encoder was trained with (frames, crop, mean/std), so
loading needs nothing else. Loading is strict: a missing, unexpected or wrongly shaped tensor is
an error that names it, never a silent partial load.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from videojepa.errors import UserError

FORMAT = "videojepa.encoder/1"
ENCODER_FILE = "encoder.safetensors"


def save_encoder(encoder: torch.nn.Module, path: str | Path, data: dict | None = None, extra: dict | None = None) -> None:
    """Write weights + metadata atomically (temp file, fsync, rename)."""
    from safetensors.torch import save_file

    from videojepa.utils.files import atomic_path

    metadata = {"format": FORMAT, "arch": json.dumps(encoder.arch), "data": json.dumps(data or {}),
                "extra": json.dumps(extra or {})}
    tensors = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def resolve_encoder_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        if (path / ENCODER_FILE).is_file():
            return path / ENCODER_FILE
        raise UserError(f"{path}: no {ENCODER_FILE} in this directory (is it a pretraining run that has "
                        f"written a checkpoint yet?)")
    if not path.is_file():
        raise UserError(f"{path}: no such encoder file or run directory")
    return path


def read_metadata(path: str | Path) -> dict:
    from safetensors import safe_open

    path = resolve_encoder_path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises several types for a damaged header
        raise UserError(f"{path}: not a readable safetensors file ({err})") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a videojepa encoder file (format {meta.get('format')!r}, expected {FORMAT!r}); "
                        f"use `videojepa convert` for other checkpoints")
    return {"arch": json.loads(meta["arch"]), "data": json.loads(meta.get("data", "{}")),
            "extra": json.loads(meta.get("extra", "{}"))}


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the encoder a file (or run directory) describes and load its weights strictly.

    The returned module has `.meta` = {"arch": ..., "data": ..., "extra": ...}.
    """
    from safetensors.torch import load_file

    from videojepa.models.vit import VisionTransformer

    path = resolve_encoder_path(path)
    meta = read_metadata(path)
    arch = {k: v for k, v in meta["arch"].items() if k != "name"}
    encoder = VisionTransformer(**arch)
    encoder.arch["name"] = meta["arch"].get("name")
    load_state_strict(encoder, load_file(str(path)), str(path))
    encoder.meta = meta
    return encoder.to(device).eval()


def load_state_strict(module: torch.nn.Module, state: dict, source: str) -> None:
    """load_state_dict that reports every mismatch by name and shape."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} tensors (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"wrong shape: {'; '.join(wrong[:3])}")
    if problems:
        raise UserError(f"{source}: does not fit the model: " + "; ".join(problems))
    module.load_state_dict(state)
