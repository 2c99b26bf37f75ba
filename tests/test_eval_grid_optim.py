"""The probe grid's optimiser options the official probes need, against a plain AdamW loop written here: per-probe
gradient clipping (V-JEPA: 1.0), weight decay on a cosine from each cell's value to a final one (V-JEPA's
CosineWDSchedule: final + (wd - final) * (1 + cos(pi t / T)) / 2, to 1e-6), and decay on every parameter (V-JEPA 2)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from videojepa.eval.grid import ProbeGrid
from videojepa.eval.probes import LinearProbe

STEPS, LR, WD, FINAL = 6, 0.05, 0.3, 1e-6


def batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 8, generator=g) * 30, torch.randint(0, 5, (16,), generator=g)) for _ in range(STEPS)]


def reference(probe, data, clip, final, decay_all):
    """AdamW by hand-set groups: lr and weight decay set before each step from the cosine, then clip, then step."""
    probe = copy.deepcopy(probe)
    decay = [p for n, p in probe.named_parameters() if decay_all or not n.endswith("bias")]
    rest = [p for n, p in probe.named_parameters() if not decay_all and n.endswith("bias")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": rest, "weight_decay": 0.0}])
    norms = []
    for t, (x, y) in enumerate(data):
        cosine = 0.5 * (1 + math.cos(math.pi * t / STEPS))
        opt.param_groups[0]["lr"] = opt.param_groups[1]["lr"] = LR * cosine
        opt.param_groups[0]["weight_decay"] = WD if final is None else final + (WD - final) * cosine
        opt.zero_grad()
        F.cross_entropy(probe(x), y).backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(probe.parameters(), clip or float("inf"))))
        opt.step()
    return probe, norms


@pytest.mark.parametrize("clip, final, decay_all", [(1.0, FINAL, False), (None, None, True)])
def test_grid_optimiser_options_equal_a_plain_loop(clip, final, decay_all):
    data = batches()
    grid = ProbeGrid(
        lambda: LinearProbe(8, 5), [{"lr": LR, "weight_decay": WD}], 0, STEPS, (0.9, 0.999), clip, final, decay_all
    )
    start = copy.deepcopy(grid.probes[0])
    for x, y in data:
        grid.step(x, y)
    expected, norms = reference(start, data, clip, final, decay_all)
    for a, b in zip(grid.probes[0].parameters(), expected.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    if clip is not None:
        assert max(norms) > 10 * clip  # the clipping did act
        unclipped, _ = reference(start, data, None, final, decay_all)  # negative control
        assert not torch.allclose(grid.probes[0].head.weight, unclipped.head.weight, atol=1e-3)
    else:  # the bias decayed too: without decay on it, it ends elsewhere
        no_bias_decay, _ = reference(start, data, clip, final, False)
        assert not torch.allclose(grid.probes[0].head.bias, no_bias_decay.head.bias, atol=1e-5)


def test_each_cell_is_clipped_by_its_own_norm():
    """Two cells, one with a tiny lr: clipping one cell's gradient by the other's norm would change its update."""
    data = batches()
    cells = [{"lr": LR, "weight_decay": WD}, {"lr": 1e-4, "weight_decay": 0.0}]
    grid = ProbeGrid(lambda: LinearProbe(8, 5), cells, 0, STEPS, (0.9, 0.999), 1.0, FINAL)
    alone = ProbeGrid(lambda: LinearProbe(8, 5), cells[:1], 0, STEPS, (0.9, 0.999), 1.0, FINAL)
    for x, y in data:
        grid.step(x, y), alone.step(x, y)
    assert torch.allclose(grid.probes[0].head.weight, alone.probes[0].head.weight, atol=1e-6)
