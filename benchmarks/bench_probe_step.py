"""Attentive-probe training step: the folded cross-attention against the standard form (JSON on stdout).

Both forms hold the same parameters and give the same values and gradients (tests/test_eval_probes.py);
the standard one materialises keys and values for every token, the folded one scores and pools the
normalised tokens directly (videojepa/eval/probes.py). Timed: forward + backward of one probe on a
(batch, tokens, width) batch of cached features, as in `videojepa probe` with the demo's encoder.

    python benchmarks/bench_probe_step.py                  # batch 16, 512 tokens, width 192, 12 heads
    python benchmarks/bench_probe_step.py --threads 2 --tokens 1568 --width 384

Also timed: one optimiser step of a `--cells`-cell probe grid (`videojepa.eval.grid.ProbeGrid`, lr cells
of the demo's kind) on the same batch: `grid_step_s` prepares (layer-norms) the batch in the step,
`grid_step_prepared_s` takes it prepared, as `videojepa probe` trains from cached features.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from videojepa.eval.grid import ProbeGrid, grid_cells
from videojepa.eval.probes import AttentiveProbe

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import oracles  # noqa: E402 - the standard form lives with the tests that check the folded one against it


def time_steps(probe: AttentiveProbe, x: torch.Tensor, steps: int) -> float:
    for _ in range(3):
        probe(x).sum().backward()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        probe(x).sum().backward()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def time_grid(grid: ProbeGrid, x: torch.Tensor, y: torch.Tensor, steps: int, prepared: bool) -> float:
    """Median optimiser step of every cell; `prepared`: the batch went through the grid's parameter-free
    `prepare` beforehand, as `videojepa probe` does once for a whole set of cached features, else the
    timed step includes it."""
    step = (lambda x: grid.step(x, y)) if prepared else (lambda x: grid.step(grid.prepare(x), y))  # noqa: E731
    x = grid.prepare(x) if prepared else x
    for _ in range(3):
        step(x)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cells", type=int, default=3, help="cells of the timed probe grid (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    probe = AttentiveProbe(args.width, 4, args.heads)
    x = torch.randn(args.batch, args.tokens, args.width)
    folded = time_steps(probe, x, args.steps)
    make_grid = lambda: ProbeGrid(
        lambda: AttentiveProbe(args.width, 4, args.heads),  # noqa: E731
        grid_cells([10.0 ** -(2 + i / 2) for i in range(args.cells)], [0.1]),
        0,
        10_000,
    )
    y = torch.randint(0, 4, (args.batch,))
    grid_step = time_grid(make_grid(), x, y, args.steps, prepared=False)
    grid_step_prepared = time_grid(make_grid(), x, y, args.steps, prepared=True)
    # the same parameters through the standard form (per-clip copies of the learned query, as in V-JEPA's code)
    probe.prepare = lambda x: x  # the standard block normalises the tokens itself
    probe.pool.forward = lambda q, x: oracles.cross_attention_block(probe.pool, q.expand(x.shape[0], -1, -1), x)
    standard = time_steps(probe, x, args.steps)
    print(
        json.dumps(
            {
                "batch": args.batch,
                "tokens": args.tokens,
                "width": args.width,
                "heads": args.heads,
                "threads": args.threads,
                "folded_step_s": folded,
                "standard_step_s": standard,
                "speedup": standard / folded,
                "grid_cells": args.cells,
                "grid_step_s": grid_step,
                "grid_step_prepared_s": grid_step_prepared,
                "torch": torch.__version__,
                "machine": platform.machine(),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
