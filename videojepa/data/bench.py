"""`videojepa data bench`: what one training clip costs in CPU, and how many cores feed a target clips/s.

For each source, `clips` training items are made in this process the way a DataLoader worker makes them
(uint8 items, one torch thread, `data.decode_threads` decoder threads) and the CPU time of the process
(all its threads) is measured per clip, split into decode (open, seek, decode the sampled frames) and
augment (crop, resize, transpose to uint8 C×T×H×W); flip and normalisation run on the training device.
CPU time barely depends on what else runs on the machine, unlike wall-clock time.

One worker process at full use of one core makes 1000 / total_ms clips per second, so a target of R clips/s
needs ceil(R · total_ms / 1000) workers, plus one core for the training process itself. The target is given,
or read from a run directory by the caller (`videojepa.train.logger.step_rate`: its logged clips/s divided by
(1 - data-wait fraction), the rate the training step alone would reach on that machine).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from videojepa.data.build import build_dataset
from videojepa.data.config import DataConfig
from videojepa.data.readers import BadFileError
from videojepa.errors import UserError


@dataclass
class SourceCost:
    source: str
    clips: int
    decode_ms: float  # median CPU ms per clip
    augment_ms: float
    total_ms: float
    wall_ms: float
    bad: int = 0
    manifest: bool = False  # read through a prepared copy's manifest

    @property
    def clips_per_s_per_worker(self) -> float:
        return 1000.0 / self.total_ms

    def workers_for(self, target: float) -> int:
        return max(1, math.ceil(target * self.total_ms / 1000.0))


@dataclass
class BenchReport:
    sources: list[SourceCost]
    weights: list[float]
    target: float | None
    target_from: str = ""
    run_stats: dict = field(default_factory=dict)

    @property
    def mixture_ms(self) -> float:
        """CPU ms of the average clip of the weighted mixture of the sources."""
        total = sum(self.weights)
        return sum(w * s.total_ms for w, s in zip(self.weights, self.sources)) / total

    def as_dict(self) -> dict:
        rows = []
        for s in self.sources:
            row = {
                "source": s.source,
                "clips": s.clips,
                "bad": s.bad,
                "manifest": s.manifest,
                "decode_cpu_ms": round(s.decode_ms, 2),
                "augment_cpu_ms": round(s.augment_ms, 2),
                "total_cpu_ms": round(s.total_ms, 2),
                "wall_ms": round(s.wall_ms, 2),
                "clips_per_s_per_worker": round(s.clips_per_s_per_worker, 2),
            }
            if self.target:
                row["workers"] = s.workers_for(self.target)
                row["cores"] = row["workers"] + 1
            rows.append(row)
        out = {
            "sources": rows,
            "target_clips_per_s": self.target,
            "target_from": self.target_from,
            "run": self.run_stats,
        }
        if len(self.sources) > 1:
            mix = {
                "weights": self.weights,
                "total_cpu_ms": round(self.mixture_ms, 2),
                "clips_per_s_per_worker": round(1000 / self.mixture_ms, 2),
            }
            if self.target:
                mix["workers"] = max(1, math.ceil(self.target * self.mixture_ms / 1000))
                mix["cores"] = mix["workers"] + 1
            out["mixture"] = mix
        return out


def measure_source(source: str, cfg: DataConfig, clips: int, seed: int = 0) -> SourceCost:
    """CPU ms per training clip of one source (see the module docstring)."""
    if clips < 1:
        raise UserError("--clips must be at least 1")
    dataset = build_dataset(source, cfg, train=True, uint8=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what a DataLoader worker runs with
    decode, augment, wall, bad = [], [], [], 0
    try:
        for i in range(clips + 1):  # the first clip warms up (imports, caches) and is not counted
            index = i % len(dataset)
            rng = np.random.default_rng([seed, index, i])
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                frames = dataset.read_clips(index, rng)
            except BadFileError:
                bad += 1
                continue
            c1 = time.process_time()
            dataset.augment(frames, rng)
            c2, w2 = time.process_time(), time.perf_counter()
            if i:
                decode.append(c1 - c0)
                augment.append(c2 - c1)
                wall.append(w2 - w0)
    finally:
        torch.set_num_threads(threads)
    if not decode:
        raise UserError(f"{source}: no readable clip in {clips + 1} tries (run `videojepa data check {source}`)")
    total = [d + a for d, a in zip(decode, augment)]
    ms = [1000 * statistics.median(x) for x in (decode, augment, total, wall)]
    return SourceCost(source, len(total), *ms, bad=bad, manifest=getattr(dataset, "manifest", None) is not None)


def bench(
    sources: list[str],
    cfg: DataConfig,
    clips: int = 32,
    target: float | None = None,
    weights: list[float] | None = None,
    seed: int = 0,
    target_from: str | None = None,
    run_stats: dict | None = None,
) -> BenchReport:
    """`target_from` says where the target rate came from (default "--target"), `run_stats` how a run's rate
    was read (`videojepa.train.logger.step_rate`, for `--run`)."""
    weights = list(weights) if weights else [1.0] * len(sources)
    if len(weights) != len(sources) or any(w <= 0 for w in weights):
        raise UserError(f"--weights: give one positive weight per source ({len(sources)}), got {weights}")
    target_from = target_from or ("--target" if target else "")
    if target is not None and target <= 0:
        raise UserError(f"--target must be positive, got {target}")
    costs = [measure_source(s, cfg, clips, seed) for s in sources]
    return BenchReport(costs, weights, target, target_from, run_stats or {})


def format_report(report: BenchReport) -> str:
    d = report.as_dict()
    lines = []
    if d["run"]:
        r = d["run"]
        lines.append(
            f"run: {r['logged_clips_per_s']} clips/s logged with {r['data_wait_fraction']:.1%} data wait "
            f"-> the step alone reaches {r['step_clips_per_s']} clips/s (target)"
        )
    head = f"{'source':<40} {'decode':>8} {'augment':>8} {'total':>8} {'clips/s':>8}"
    head += f" {'workers':>8} {'cores':>6}" if report.target else ""
    lines += [
        f"CPU ms per clip (median of {report.sources[0].clips}), clips/s of one worker"
        + (f"; workers and cores for {report.target:.0f} clips/s" if report.target else ""),
        head,
    ]
    for row in d["sources"]:
        name = row["source"] if len(row["source"]) <= 40 else "..." + row["source"][-37:]
        line = (
            f"{name:<40} {row['decode_cpu_ms']:>8.1f} {row['augment_cpu_ms']:>8.1f} {row['total_cpu_ms']:>8.1f} "
            f"{row['clips_per_s_per_worker']:>8.1f}"
        )
        if report.target:
            line += f" {row['workers']:>8} {row['cores']:>6}"
        lines.append(line + ("  (prepared)" if row["manifest"] else "") + (f"  {row['bad']} bad" if row["bad"] else ""))
    if "mixture" in d:
        m = d["mixture"]
        line = (
            f"{'mixture, weights ' + ','.join(f'{w:g}' for w in m['weights']):<40} {'':>8} {'':>8} "
            f"{m['total_cpu_ms']:>8.1f} {m['clips_per_s_per_worker']:>8.1f}"
        )
        lines.append(line + (f" {m['workers']:>8} {m['cores']:>6}" if report.target else ""))
    if report.target:
        lines.append(
            "cores = workers + 1 for the training process: set data.num_workers to the workers and "
            "cpus-per-task to the cores (per GPU)"
        )
    return "\n".join(lines)
