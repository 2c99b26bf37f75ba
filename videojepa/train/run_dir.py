"""A training run's directory: its resolved config (checked against the one a resumed run saved), its exported
encoders, and an exclusive lock, so that two launches never train into one directory.

    run = RunDirectory(cfg.run.dir)
    saved_steps = run.check(cfg)     # refuses another run's directory before anything is written
    run.lock(dist)                   # refuses a directory another live launch trains in
    ...
    run.unlock()

The lock is `RUN/.lock`, held with `flock` by rank 0 of a launch for as long as it trains (the ranks of one
torchrun launch share the directory; every rank learns rank 0's answer, so all stop together). It records who
holds it (host, pid, start time), and a second launch is refused in one line naming them: two trainers in one
directory would both append to metrics.jsonl and race on the checkpoints' renames. The kernel releases a
`flock` when its process dies, so a run killed with `kill -9` (or by a node failure on this host) leaves no
lock behind that blocks its resume; data-loader workers that outlive it by a few seconds still hold it, so a
lock whose recorded process is gone on this host is waited for briefly before the launch is refused.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml

from videojepa.config.loader import migrate_moved_keys, to_dict
from videojepa.config.schema import method_keys
from videojepa.encoder_io import ENCODER_FILE
from videojepa.errors import UserError
from videojepa.train import checkpoint as ckpt

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None

LOCK_FILE = ".lock"
STALE_WAIT_S = 30.0  # how long a lock whose holder is gone (its workers still exiting) is waited for

# Keys that may differ when resuming: they change neither the weights nor the data order.
RESUME_FREE_KEYS = {
    "run.dir",
    "train.steps",
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.encoder_snapshots",
    "train.max_nonfinite_steps",
    "data.num_workers",
    "data.worker_timeout",
    "data.decode_threads",
    "train.compile",
    "train.compile_backend",
    "train.activation_checkpointing",
    "train.collapse_std",
    "train.collapse_rank",
}
# Sections that may differ when resuming, every key under them (the online probe only reads the encoder).
RESUME_FREE_SECTIONS = ("train.online_probe",)


class RunLockedError(UserError):
    """Another live launch trains in this run directory."""


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_conflicts(saved: dict, current: dict, defaults: dict | None = None) -> list[str]:
    """The differences between a run's saved config and the current one that forbid resuming it. A key the
    saved config lacks (added to the schema after the run was made) counts as its default from `defaults`:
    the run behaved that way."""
    a, b = _flatten(saved), _flatten(current)
    if defaults is not None:
        a = {**{k: v for k, v in _flatten(defaults).items() if k not in a and k in b}, **a}
    return [
        f"{k}: run has {a.get(k)!r}, now {b.get(k)!r}"
        for k in sorted(set(a) | set(b))
        if not resume_free(k) and a.get(k) != b.get(k)
    ]


def resume_free(key: str) -> bool:
    """A key that may differ when resuming (`RESUME_FREE_KEYS`, `RESUME_FREE_SECTIONS`)."""
    return key in RESUME_FREE_KEYS or any(key == s or key.startswith(f"{s}.") for s in RESUME_FREE_SECTIONS)


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    """Where `train.encoder_snapshots` keeps the encoder of `step`."""
    return Path(run_dir) / "encoders" / f"step_{step:08d}.safetensors"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class RunDirectory:
    """See the module docstring."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_file = None

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    def check(self, cfg) -> int | None:
        """Refuse a directory that holds another run (a conflicting config, or checkpoints without a config);
        returns train.steps of the run saved there, None when there is none. Reads only."""
        if not self.config_path.exists() and (ckpt.list_checkpoints(self.path) or (self.path / ENCODER_FILE).exists()):
            # a run without its config, or a `videojepa convert` folder: training here would overwrite it
            raise UserError(
                f"{self.path} holds checkpoints or an encoder but no config.yaml, so it is not a run this "
                f"command can resume; use another run.dir"
            )
        if not self.config_path.exists():
            return None
        saved = migrate_moved_keys(yaml.safe_load(self.config_path.read_text()), str(self.config_path))
        method = getattr(cfg, "method", None)  # (a fine-tuning config has none)
        if method is not None and (saved.get("method") or {}).get("name") == method.name:
            # a config saved when every method's keys were in one section: the keys this method never read
            saved["method"] = method_keys(saved["method"], method.name)
        conflicts = config_conflicts(saved, to_dict(cfg), to_dict(type(cfg)()))
        if conflicts:
            raise UserError(
                f"{self.path} holds a run with a different config; use another run.dir or the same "
                f"settings. Differences: {'; '.join(conflicts)}"
            )
        return saved["train"]["steps"]

    # ------------------------------------------------------------------------------------------------ lock
    def lock(self, dist=None) -> None:
        """Hold the directory's lock for this launch (rank 0 takes it; every rank raises if it is refused)."""
        refusal = ""
        if dist is None or dist.is_main:
            self.path.mkdir(parents=True, exist_ok=True)
            refusal = self._acquire()
        if dist is not None and dist.enabled:  # all ranks stop together, none waits alone in a collective
            refused = torch.tensor([1 if refusal else 0], device=dist.device)
            torch.distributed.all_reduce(refused, op=torch.distributed.ReduceOp.MAX)
            if int(refused) and not refusal:
                refusal = f"{self.path} is locked by another launch (see rank 0's message)"
        if refusal:
            raise RunLockedError(refusal)

    def _acquire(self) -> str:
        """Take the lock; the refusal's message when another live launch holds it, else ""."""
        if fcntl is None:
            return ""
        path = self.path / LOCK_FILE
        deadline = time.monotonic() + STALE_WAIT_S
        while True:
            handle = open(path, "a+")  # noqa: SIM115 - held open for as long as the lock is
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                holder = self.holder()
                stale = holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", -1)))
                if stale and time.monotonic() < deadline:  # its process is gone; its workers are exiting
                    time.sleep(0.5)
                    continue
                return (
                    f"{self.path} is in use by another training launch (host {holder.get('host', '?')}, pid "
                    f"{holder.get('pid', '?')}, since {holder.get('since', '?')}): two trainers in one directory "
                    f"would mix their metrics and checkpoints; wait for it to end, or use another run.dir"
                )
            handle.seek(0)
            handle.truncate()
            since = datetime.now(timezone.utc).isoformat(timespec="seconds")
            handle.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": since}) + "\n")
            handle.flush()
            self._lock_file = handle
            return ""

    def holder(self) -> dict:
        """Who holds (or last held) the lock: {host, pid, since}; {} when unknown."""
        try:
            return json.loads((self.path / LOCK_FILE).read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def unlock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
