"""Training checkpoints: sharded, atomic, rotated, pickle-free, and resumable on any number of ranks.

A checkpoint is a directory RUN/checkpoints/step_XXXXXXXX/ (the last `keep` are kept):

    .metadata          the index torch.distributed.checkpoint (DCP) writes
    __R_0.distcp       the tensors: under FSDP2 each rank writes only its own shards; replicated tensors once
    record.json        everything else (step, config, data cursor, counters, hyper-parameters), from rank 0

`save_checkpoint` splits a nested state dict into its tensors (DCP) and the rest (JSON), so nothing is
pickled. Every rank writes into a hidden temporary directory; after all have finished, rank 0 renames it
into place, so a crash mid-write leaves the previous checkpoint intact. Loading reads the tensors into the
layout the reader has now (`load_tensors`: DCP reshards, so a run saved on 2 ranks resumes on 1 or 4) or
whole (`read_checkpoint`, for tools and tests). DCP pickles its index: it is read with an unpickler that
admits only the classes DCP writes, and any non-tensor item with `torch.load(weights_only=True)`.

Files of the previous format (a single step_XXXXXXXX.pt of tensors and plain containers) still load, with
`torch.load(weights_only=True)`. An unreadable newest checkpoint is skipped with a warning in favour of the
one before; when none loads, `load_latest` raises with each one and why, instead of letting the run restart
from step 0. A failed write (a full disk, no permission) is a one-line `CheckpointWriteError` naming the
path and the space needed; the previous checkpoint stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import pickle
import re
import shutil
import warnings
from pathlib import Path

import torch

from videojepa.errors import UserError
from videojepa.utils.files import atomic_write_text, safe_load

log = logging.getLogger("videojepa.train")
PATTERN = re.compile(r"step_(\d{8})(\.pt)?$")
PLAIN = (str, int, float, bool, type(None), torch.Tensor)
REQUIRED = ("step",)
RECORD = "record.json"
FORMAT = "videojepa.checkpoint/2"


class CheckpointError(UserError):
    """No checkpoint of a run could be loaded (the message lists each file and why)."""


class CheckpointWriteError(UserError):
    """A checkpoint could not be written (the previous one is untouched)."""


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first: step directories, and single files of the previous format."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if PATTERN.match(p.name)), key=lambda p: p.name)


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


# ------------------------------------------------------------------------------------------------ splitting
TENSOR = "__tensor__"  # in record.json: this leaf is the DCP tensor with the given key


def split_state(state, prefix: str = "") -> tuple[object, dict]:
    """A nested state -> (its JSON-able skeleton with tensor leaves replaced by references, {key: tensor})."""
    if isinstance(state, torch.Tensor):
        return {TENSOR: prefix}, {prefix: state}
    if isinstance(state, dict):
        skeleton, tensors = {}, {}
        for key, value in state.items():
            skeleton[str(key)], found = split_state(value, f"{prefix}/{key}" if prefix else str(key))
            tensors.update(found)
        if any(not isinstance(k, str) for k in state):  # optimizer states keyed by int: keep the key type
            skeleton = {"__int_keys__": True, "items": skeleton}
        return skeleton, tensors
    if isinstance(state, (list, tuple)):
        parts = [split_state(v, f"{prefix}[{i}]") for i, v in enumerate(state)]
        return [p[0] for p in parts], {k: v for _, t in parts for k, v in t.items()}
    return state, {}


def tensor_refs(skeleton) -> list[str]:
    """The DCP keys a skeleton refers to."""
    if isinstance(skeleton, dict):
        if TENSOR in skeleton:
            return [skeleton[TENSOR]]
        return [k for v in skeleton.values() for k in tensor_refs(v)]
    if isinstance(skeleton, list):
        return [k for v in skeleton for k in tensor_refs(v)]
    return []


def join_state(skeleton, tensors: dict):
    """The inverse of `split_state`."""
    if isinstance(skeleton, dict):
        if TENSOR in skeleton:
            return tensors[skeleton[TENSOR]]
        if skeleton.get("__int_keys__"):
            return {
                int(k) if k.lstrip("-").isdigit() else k: join_state(v, tensors) for k, v in skeleton["items"].items()
            }
        return {k: join_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [join_state(v, tensors) for v in skeleton]
    return skeleton


# ------------------------------------------------------------------------------------------- safe DCP reads
# What DCP's index (.metadata) may contain; anything else in it is refused, never imported.
DCP_CLASSES = {
    ("torch.distributed.checkpoint.metadata", name)
    for name in (
        "Metadata",
        "TensorStorageMetadata",
        "BytesStorageMetadata",
        "ChunkStorageMetadata",
        "TensorProperties",
        "MetadataIndex",
        "StorageMeta",
        "_MEM_FORMAT_ENCODING",
    )
} | {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
    ("collections", "OrderedDict"),
}


class _IndexUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in DCP_CLASSES or (module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused: the checkpoint index would import {module}.{name}")


def _reader(path: Path):
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import StorageMeta

    class SafeReader(FileSystemReader):
        """DCP's reader, with its pickled index read by an unpickler limited to DCP's own classes."""

        def read_metadata(self, *args, **kwargs):
            with open(Path(self.path) / ".metadata", "rb") as f:
                metadata = _IndexUnpickler(f).load()
            if getattr(metadata, "storage_meta", None) is None:
                metadata.storage_meta = StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    return SafeReader(str(path))


def _planner():
    from torch.distributed.checkpoint import DefaultLoadPlanner

    class WeightsOnlyPlanner(DefaultLoadPlanner):
        """Non-tensor items are read with weights_only=True (we write none; a planted one cannot run code)."""

        def load_bytes(self, read_item, value):
            self.state_dict[read_item.dest_index.fqn] = torch.load(value, weights_only=True)

    return WeightsOnlyPlanner()


@contextlib.contextmanager
def _quiet():
    """DCP warns on every call in a single process that it assumes one; that is what we intend."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _rank() -> int:
    return torch.distributed.get_rank() if _distributed() else 0


def _barrier() -> None:
    if _distributed():
        torch.distributed.barrier()


# -------------------------------------------------------------------------------------------------- writing
def save_checkpoint(run_dir: Path, step: int, state: dict, keep: int) -> Path:
    """Write `state` (tensors, DTensor shards and plain containers) as checkpoint `step`; every rank calls it
    when a process group exists. Returns the checkpoint's directory."""
    import torch.distributed.checkpoint as dcp

    check_plain(state)  # a DTensor shard is a tensor too
    skeleton, tensors = split_state(state)
    folder = checkpoint_dir(run_dir)
    final, tmp = folder / f"step_{step:08d}", folder / f".step_{step:08d}.tmp"
    if _rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, exist_ok=True)
    _barrier()
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        if tensors:
            with _quiet():
                dcp.save(tensors, checkpoint_id=str(tmp))
        if _rank() == 0:
            atomic_write_text(tmp / RECORD, json.dumps({"format": FORMAT, "state": skeleton}))
    except (Exception, CheckpointException) as err:  # a full disk, a read-only folder: one line, keep the previous
        if _rank() == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(err, tmp, tensors) from None
    _barrier()
    if _rank() == 0:
        if final.exists():  # the same step saved again (a stop signal right after a periodic save)
            shutil.rmtree(final)
        tmp.rename(final)
        for old in list_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
    _barrier()
    return final


def _reason(err: BaseException) -> str:
    """One line: a refusal if there is one, else the innermost error DCP reports (its text holds each
    rank's traceback)."""
    refused = re.search(r"refused: [^;)\n]*", str(err))
    if refused:
        return refused.group(0)[:300]
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[-1] if lines else type(err).__name__)[:300]


def _write_error(err: Exception, where: Path, tensors: dict) -> CheckpointWriteError:
    cause = err
    while cause is not None and not isinstance(cause, OSError):  # DCP wraps each rank's failure
        nested = [e[0] if isinstance(e, tuple) else e for e in getattr(cause, "failures", {}).values()]
        nested = [e for e in nested if isinstance(e, BaseException)]
        cause = nested[0] if nested else cause.__cause__ or cause.__context__
    needed = sum(t.numel() * t.element_size() for t in tensors.values() if hasattr(t, "numel"))
    try:
        free = shutil.disk_usage(where.parent).free
    except OSError:
        free = None
    reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(err).splitlines()[0][:200]
    space = (
        f"; it needs about {needed / 2**20:.1f} MiB here, {free / 2**20:.1f} MiB are free"
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC and free is not None
        else ""
    )
    return CheckpointWriteError(
        f"cannot write checkpoint {where.parent / where.name.strip('.').removesuffix('.tmp')}: "
        f"{reason}{space}; the previous checkpoint is kept"
    )


# -------------------------------------------------------------------------------------------------- reading
def read_record(path: Path) -> dict:
    """A checkpoint's non-tensor state with tensor references (`TENSOR` leaves); UserError when unusable."""
    try:
        record = json.loads((path / RECORD).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: unreadable ({type(err).__name__}: {str(err).splitlines()[0][:160]})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("state"), dict):
        raise UserError(f"{path}: not a videojepa training checkpoint ({RECORD} has no {FORMAT} state)")
    missing = [key for key in REQUIRED if key not in record["state"]]
    if missing:
        raise UserError(f"{path}: not a videojepa training checkpoint (needs {', '.join(missing)})")
    return record["state"]


def load_tensors(path: Path, template: dict) -> None:
    """Fill `template` ({key: tensor or DTensor}, in the reader's current layout) from checkpoint `path`."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        with _quiet():
            dcp.load(template, storage_reader=_reader(path), planner=_planner())
    except (Exception, CheckpointException) as err:  # a refused index, a torn shard, a key the checkpoint lacks
        # (DCP's CheckpointException is a BaseException; each rank's error is in its text)
        raise UserError(f"{path}: unreadable ({_reason(err)})") from None


def tensor_layout(path: Path) -> dict:
    """{key: (shape, dtype)} of every tensor a checkpoint holds, from its index alone."""
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    try:
        metadata = _reader(path).read_metadata()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as err:
        raise UserError(f"{path}: unreadable ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    return {
        key: (tuple(meta.size), meta.properties.dtype)
        for key, meta in metadata.state_dict_metadata.items()
        if isinstance(meta, TensorStorageMetadata)
    }


def read_checkpoint(path: Path, map_location="cpu") -> dict:
    """One whole checkpoint (every tensor complete, on the CPU), pickle-free; UserError when unusable."""
    path = Path(path)
    if path.is_file():
        return read_legacy(path, map_location)
    state = read_record(path)
    wanted = tensor_refs(state)
    if wanted:
        layout = tensor_layout(path)
        template = {key: torch.empty(layout[key][0], dtype=layout[key][1]) for key in wanted if key in layout}
        missing = sorted(set(wanted) - set(template))
        if missing:
            raise UserError(f"{path}: unreadable (the record names tensors the index lacks: {', '.join(missing[:3])})")
        load_tensors(path, template)
        return join_state(state, template)
    return state


def read_legacy(path: Path, map_location="cpu") -> dict:
    """A single-file checkpoint of the previous format."""
    state = safe_load(path, map_location)
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise UserError(f"{path}: not a videojepa training checkpoint (needs {', '.join(REQUIRED)}; found {found})")
    return state


def latest(run_dir: Path, read=read_checkpoint):
    """(path, what `read(path)` gives) of the newest checkpoint that reads; None if the run has none;
    CheckpointError, listing each one and why, when none reads."""
    reasons = []
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return path, read(path)
        except UserError as err:  # fall back to the previous one; every reason is reported if none loads
            log.warning("skipping unreadable checkpoint %s", err)
            reasons.append(str(err))
    if reasons:
        raise CheckpointError(
            f"{run_dir}: no checkpoint could be loaded, so the run cannot resume (it is not "
            f"restarted from step 0, and its metrics.jsonl is left as it is): " + " | ".join(reasons)
        )
    return None


def load_latest(run_dir: Path, map_location="cpu") -> dict | None:
    """The newest checkpoint that loads, whole; None if the run has none; CheckpointError if none loads."""
    found = latest(run_dir, lambda path: read_checkpoint(path, map_location))
    return None if found is None else found[1]
