"""Work the trainer runs between optimiser steps that must leave the training exactly as it was.

    Trainer(cfg, hooks=[OnlineProbe(cfg)]).fit()     # `videojepa.eval.online`: what `videojepa pretrain` passes

A hook is an object with `name` (its records' prefix), `every` (run after every N steps and after the last one),
optionally `key` (the config key that asks for it, e.g. "train.online_probe"), and `__call__(step, encoder) -> dict`,
which reads the exported encoder and returns numbers to record. The trainer's `HookRunner` calls it on rank 0
inside `untouched`: every rank takes part in exporting the encoder (under FSDP2 a gather), then the others wait at
a barrier. The hook's record, with its seconds and its share of the launch's time so far, goes to metrics.jsonl
(kind "probe"), TensorBoard and the log. The trainer stays ignorant of what a hook computes: hooks live with what
they need (the online probe in `eval`, which `train` may not import).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np
import torch

log = logging.getLogger("videojepa.train")


class StepHook(Protocol):
    name: str
    every: int

    def __call__(self, step: int, encoder: torch.nn.Module) -> dict: ...


@contextlib.contextmanager
def untouched(module: torch.nn.Module) -> Iterator[None]:
    """Run something between training steps without a trace on the training: torch's (CPU and CUDA), numpy's
    and python's random states and every submodule's train / eval mode are restored afterwards, and no
    gradient is recorded meanwhile."""
    cpu, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    modes = [(m, m.training) for m in module.modules()]
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        np.random.set_state(np_state)
        random.setstate(py_state)
        for m, training in modes:
            m.train(training)


class HookRunner:
    """The trainer's step hooks: which are due, and running them without a trace (module docstring)."""

    def __init__(self, hooks: Sequence[StepHook] = ()):
        self.hooks = list(hooks)
        self.seconds: dict[str, float] = defaultdict(float)
        self.started = time.perf_counter()

    def has(self, key: str) -> bool:
        return any(getattr(h, "key", None) == key for h in self.hooks)

    def start(self) -> None:
        """The launch's training starts now (the time shares count from here)."""
        self.started = time.perf_counter()

    def run(
        self, step: int, last: int, method: torch.nn.Module, export: Callable[[], torch.nn.Module], dist, metrics
    ) -> None:
        """The hooks due after `step` (every `every` steps, and after the `last` one) on `export()`'s encoder,
        exported once for them all, run on rank 0 inside `untouched(method)` while the other ranks wait at a
        barrier. Records go to `metrics` (rank 0's writer, or None) and the log."""
        due = [h for h in self.hooks if step % h.every == 0 or step == last]
        if not due:
            return
        started = time.perf_counter()
        records, spent = {}, {}
        with untouched(method):
            encoder = export()  # every rank takes part (under FSDP2 a gather onto rank 0)
            for hook in due:  # the export's time is the first hook's
                begun = started if hook is due[0] else time.perf_counter()
                records[hook.name] = hook(step, encoder) if dist.is_main else None
                spent[hook.name] = time.perf_counter() - begun
                self.seconds[hook.name] += spent[hook.name]
        if dist.enabled:
            torch.distributed.barrier()  # the other ranks wait for rank 0's hooks
        for hook in due:
            record = records[hook.name]
            if record is None:
                continue
            seconds = spent[hook.name]
            share = self.seconds[hook.name] / max(time.perf_counter() - self.started, 1e-9)
            record = {"step": step, **record, f"{hook.name}/seconds": seconds, f"{hook.name}/time_share": share}
            if metrics:
                metrics.write("probe", record)
            scores = " ".join(f"{k.split('/', 1)[-1]} {v:.4g}" for k, v in record.items() if k.endswith("top1"))
            log.info(
                "step %d %s: %s (%.1f s; %.1f%% of this launch's time so far)",
                step,
                hook.name.replace("_", " "),
                scores,
                seconds,
                100 * share,
            )
