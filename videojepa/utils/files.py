"""Crash-safe file writing: a reader sees the old file or the complete new one, never a torn one.

Every file the project writes as a whole goes through `atomic_path` (configs, metrics files rewritten on
resume, results, synthetic data lists, pictures, checkpoints, feature caches, encoder files): the content
is written to a hidden temporary file beside the target, fsynced and renamed over it. A crash or an
exception mid-write leaves the previous file (or none) and no temporary file behind. Reading: `safe_load`
reads a torch.save file without running code (a checkpoint of the previous format, an official one).
"""

from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path

import torch

from videojepa.errors import UserError


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace `path` by `text` (UTF-8) atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def atomic_savefig(fig, path: str | Path, **kwargs) -> None:
    """`fig.savefig(path)` atomically; the format comes from `path`'s suffix (the temporary name has none)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **kwargs)


def write_json_and_markdown(
    folder: str | Path, document: dict, markdown: str, stem: str = "results"
) -> tuple[Path, Path]:
    """Write `stem`.json and `stem`.md atomically into `folder`; returns their paths."""
    import json

    folder = Path(folder)
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    atomic_write_text(json_path, json.dumps(document, indent=2) + "\n")
    atomic_write_text(md_path, markdown)
    return json_path, md_path


def safe_load(path: Path, map_location="cpu"):
    """torch.load(weights_only=True), with a one-line UserError for a refused or damaged file."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only met something other than tensors and plain containers
        blocked = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line]
        if blocked:
            raise UserError(
                f"{path}: refused: loading it would import or call code ({blocked[0]}); only tensors and "
                f"plain containers are read (torch.load weights_only=True)"
            ) from None
        raise UserError(f"{path}: unreadable: not a torch.save file of tensors and plain containers") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:  # torn or damaged file
        raise UserError(f"{path}: unreadable ({type(err).__name__}: {str(err).splitlines()[0][:160]})") from None
