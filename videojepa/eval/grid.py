"""Many probes trained in one pass: a grid over learning rate x weight decay sharing every batch.

    grid = ProbeGrid(lambda: build_probe("linear", 384, 10), grid_cells([1e-3, 1e-4], [0.01, 0.1]),
                     seed=0, total_steps=1000)
    for x, y in batches:
        losses = grid.step(grid.prepare(x), y)    # (cells,) one loss per cell
    logits = grid.logits(grid.prepare(x_val))     # (cells, B, num_classes)

`step` and `logits` take features through the grid's `prepare`: the probes' parameter-free first part
(`Probe.prepare`, e.g. the attentive probe's layer norm), the same for every cell, so it is computed once
per batch, or once for a whole set of fixed features (`videojepa probe` on cached features).

Each cell is an ordinary probe module. All cells start from the SAME initialisation (the probe built
under `seed`), see the same batches in the same order, and own their AdamW parameter groups: the
cell's lr and weight decay (decay on weights only, as V-JEPA: not on biases or other 1-D tensors; on every
parameter with `decay_all`, as V-JEPA 2), with a cosine schedule from the cell's lr to 0 over `total_steps`
and no warmup; with `final_weight_decay` the decay follows the same cosine from the cell's value to it (V-JEPA's
probe: to 1e-6), else it is constant; with `grad_clip` each cell's gradient norm is clipped on its own (V-JEPA's
probe: 1.0). One backward pass
through the sum of the cells' losses gives every cell the gradient it gets alone, and the optimiser
updates each group independently, so a cell follows the trajectory of training it alone with the same
seed (`ProbeGrid` with that single cell): bit for bit for linear probes; for attentive probes up to the
rounding of the one matrix product in which all cells score the tokens (`AttentiveProbe.classify_many`;
tested to 1e-10 in float64). What the cells share is getting the batch (reading cached features, or
running the frozen encoder), its preparation and, for attentive probes, the passes over its tokens.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from itertools import product

import torch
import torch.nn.functional as F
from torch import nn

from videojepa.eval.probes import Probe


def grid_cells(lrs: Sequence[float], weight_decays: Sequence[float]) -> list[dict]:
    """Every (lr, weight_decay) pair, lr-major."""
    return [{"lr": float(lr), "weight_decay": float(wd)} for lr, wd in product(lrs, weight_decays)]


def cosine_factor(step: int, total_steps: int) -> float:
    """Cosine decay from 1 at step 0 towards 0 at `total_steps` (no warmup)."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


class ProbeGrid(nn.Module):
    def __init__(
        self,
        make_probe: Callable[[], Probe],
        cells: Sequence[dict],
        seed: int,
        total_steps: int,
        betas: tuple[float, float] = (0.9, 0.999),
        grad_clip: float | None = None,
        final_weight_decay: float | None = None,
        decay_all: bool = False,
    ):
        super().__init__()
        if not cells:
            raise ValueError("a probe grid needs at least one (lr, weight_decay) cell")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            first = make_probe()
        if not isinstance(first, Probe):
            raise TypeError(f"a probe grid trains videojepa.eval.probes.Probe modules, got {type(first).__name__}")
        self.cells = [dict(c) for c in cells]
        self.probes = nn.ModuleList([first] + [copy.deepcopy(first) for _ in cells[1:]])
        groups = []
        for cell, probe in zip(self.cells, self.probes):
            decay, no_decay = [], []
            for name, p in probe.named_parameters():
                (no_decay if not decay_all and (p.ndim <= 1 or name.endswith(".bias")) else decay).append(p)
            base = {"lr": cell["lr"], "base_lr": cell["lr"]}
            groups.append(
                {"params": decay, **base, "weight_decay": cell["weight_decay"], "base_wd": cell["weight_decay"]}
            )
            groups.append({"params": no_decay, **base, "weight_decay": 0.0, "base_wd": 0.0})
        # fused: one pass over each tensor instead of ~10 (the per-parameter loop was a fifth of a probe step on
        # CPU); it is elementwise, so a cell's update still does not depend on the other cells
        self.optimizer = torch.optim.AdamW(groups, betas=betas, fused=True)
        self.total_steps, self.step_count = total_steps, 0
        self.grad_clip, self.final_weight_decay = grad_clip, final_weight_decay

    def __len__(self) -> int:
        return len(self.probes)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimiser step of every cell on the same prepared batch `x` (`prepare`); returns the cells'
        losses (cells,)."""
        self.train()
        factor = cosine_factor(self.step_count, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
            if self.final_weight_decay is not None and group["base_wd"] > 0:
                group["weight_decay"] = self.final_weight_decay + (group["base_wd"] - self.final_weight_decay) * factor
        losses = torch.stack([F.cross_entropy(logits, y) for logits in self.forward(x)])
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        if self.grad_clip is not None:
            for probe in self.probes:  # each cell's own norm: its gradient is what it gets alone
                torch.nn.utils.clip_grad_norm_(list(probe.parameters()), self.grad_clip, foreach=True)
        self.optimizer.step()
        self.step_count += 1
        return losses.detach().cpu()

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(cells, B, num_classes) for the prepared batch `x`, in eval mode."""
        self.eval()
        return torch.stack(self.forward(x))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Features -> the input of `step` and `logits` (the cells' common `Probe.prepare`)."""
        return self.probes[0].prepare(x)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every cell's logits for the prepared batch `x`, taken together where the probes can
        (`Probe.classify_many`)."""
        return type(self.probes[0]).classify_many(self.probes, x)


def fit(
    grid: ProbeGrid,
    epochs: int,
    epoch_batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    on_epoch: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Train for `epochs`; `epoch_batches(e)` yields (x, y), x prepared (`grid.prepare`).
    Returns the last epoch's mean loss per cell."""
    mean_loss = torch.zeros(len(grid))
    for epoch in range(epochs):
        total, count = torch.zeros(len(grid)), 0
        for x, y in epoch_batches(epoch):
            total += grid.step(x, y) * len(y)
            count += len(y)
        mean_loss = total / max(count, 1)
        if on_epoch is not None:
            on_epoch(epoch, mean_loss)
    return mean_loss
