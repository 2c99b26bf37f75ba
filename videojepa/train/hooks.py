"""Work the trainer runs between optimiser steps that must leave the training exactly as it was.

    Trainer(cfg, hooks=[OnlineProbe(cfg)]).fit()     # `videojepa.eval.online`: what `videojepa pretrain` passes

A hook is an object with `name` (its records' prefix), `every` (run after every N steps and after the last one),
optionally `key` (the config key that asks for it, e.g. "train.online_probe"), and `__call__(step, encoder) -> dict`,
which reads the exported encoder and returns numbers to record. The trainer (`Trainer.run_hooks`) calls it on rank 0
inside `untouched`: every rank takes part in exporting the encoder (under FSDP2 a gather), then the others wait at
a barrier. The hook's record, with its seconds and its share of the launch's time so far, goes to metrics.jsonl
(kind "probe"), TensorBoard and the log. The trainer stays ignorant of what a hook computes: hooks live with what
they need (the online probe in `eval`, which `train` may not import).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch


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
