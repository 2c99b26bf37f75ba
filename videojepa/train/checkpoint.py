"""Training checkpoints: atomic, rotated, pickle-free, complete enough to continue the exact trajectory.

Files live in RUN/checkpoints/step_XXXXXXXX.pt (the last `keep` are kept). Each write goes to a
temporary file that is fsynced and renamed into place, so a crash mid-write leaves the previous
checkpoint intact. A checkpoint holds tensors and plain containers only (dict, list, tuple, str, int,
float, bool, None; the RNG states converted to tensors), checked before writing, and is read with
`torch.load(weights_only=True)`: a planted file whose unpickling would run code is refused, never run.
An unreadable newest file is skipped with a warning in favour of the one before; when no file loads,
`load_latest` raises with each file and why, instead of letting the run restart from step 0.
"""
from __future__ import annotations

import logging
import random
import re
from pathlib import Path

import numpy as np
import torch

from videojepa.errors import UserError
from videojepa.utils.files import atomic_path

log = logging.getLogger("videojepa.train")
PATTERN = re.compile(r"step_(\d{8})\.pt$")
PLAIN = (str, int, float, bool, type(None), torch.Tensor)
REQUIRED = ("step",)


class CheckpointError(UserError):
    """No checkpoint of a run could be loaded (the message lists each file and why)."""


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[Path]:
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if PATTERN.match(p.name)), key=lambda p: p.name)


def rng_state() -> dict:
    """Every RNG the loop draws from, as tensors and plain numbers."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, python_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
                        "gauss": python_gauss}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["internal"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_plain(value, where: str = "checkpoint") -> None:
    """Raise TypeError naming the first value that is not a tensor or a plain container of them."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}, not str or int")
            check_plain(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, PLAIN):
        raise TypeError(f"{where} is a {type(value).__name__}: checkpoints hold tensors and plain containers only")


def save_checkpoint(run_dir: Path, step: int, state: dict, keep: int) -> Path:
    check_plain(state)  # what we write must load back with weights_only=True
    path = checkpoint_dir(run_dir) / f"step_{step:08d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def safe_load(path: Path, map_location="cpu"):
    """torch.load(weights_only=True), with a one-line UserError for a refused or damaged file."""
    import pickle

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only met something other than tensors and plain containers
        blocked = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line]
        if blocked:
            raise UserError(f"{path}: refused: loading it would import or call code ({blocked[0]}); only tensors and "
                            f"plain containers are read (torch.load weights_only=True)") from None
        raise UserError(f"{path}: unreadable: not a torch.save file of tensors and plain containers") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:  # torn or damaged file
        raise UserError(f"{path}: unreadable ({type(err).__name__}: {str(err).splitlines()[0][:160]})") from None


def read_checkpoint(path: Path, map_location="cpu") -> dict:
    """One training checkpoint, pickle-free; UserError with the reason when it cannot be used."""
    state = safe_load(path, map_location)
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise UserError(f"{path}: not a videojepa training checkpoint (needs {', '.join(REQUIRED)}; found {found})")
    return state


def load_latest(run_dir: Path, map_location="cpu") -> dict | None:
    """The newest checkpoint that loads; None if the run has none; CheckpointError if none loads."""
    reasons = []
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return read_checkpoint(path, map_location)
        except UserError as err:  # fall back to the previous file; every reason is reported if none loads
            log.warning("skipping unreadable checkpoint %s", err)
            reasons.append(str(err))
    if reasons:
        raise CheckpointError(f"{run_dir}: no checkpoint could be loaded, so the run cannot resume (it is not "
                              f"restarted from step 0, and its metrics.jsonl is left as it is): " + " | ".join(reasons))
    return None
