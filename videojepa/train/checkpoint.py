"""Training checkpoints: atomic, rotated, complete enough to continue the exact trajectory.

Files live in RUN/checkpoints/step_XXXXXXXX.pt (the last `keep` are kept). Each write goes to a
temporary file that is fsynced and renamed into place, so a crash mid-write leaves the previous
checkpoint intact; a damaged newest file is skipped with a warning in favour of the one before.
"""
from __future__ import annotations

import logging
import random
import re
from pathlib import Path

import numpy as np
import torch

from videojepa.utils.files import atomic_path

log = logging.getLogger("videojepa.train")
PATTERN = re.compile(r"step_(\d{8})\.pt$")


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[Path]:
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if PATTERN.match(p.name)), key=lambda p: p.name)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, step: int, state: dict, keep: int) -> Path:
    path = checkpoint_dir(run_dir) / f"step_{step:08d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_latest(run_dir: Path, map_location="cpu") -> dict | None:
    """The newest checkpoint that loads; None if there is none."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return torch.load(path, map_location=map_location, weights_only=False)
        except Exception as err:  # a damaged file: fall back to the previous one
            log.warning("skipping unreadable checkpoint %s (%s)", path, err)
    return None
