"""Probe grid vs separate runs: wall time of one `videojepa probe` run training a 5 x 4 lr x wd grid
against 20 separate runs of one cell each, on the synthetic appearance task.

    python benchmarks/bench_probe_grid.py                    # JSON to stdout
    python benchmarks/bench_probe_grid.py --out grid.json

Every run is a full `run_probe` (encoder forward on the train and val sets, probe training, evaluation),
each separate run in its own run directory, so it extracts its own features, as 20 independent jobs
would. Modes:
  - cached: features extracted once per run, then the probes train from memory (the default);
  - live:   `features.cache=false`, the encoder runs on every training batch (the official V-JEPA
            evaluation loop), where sharing each batch between the cells matters most.
The JSON also checks that every cell of the grid scores exactly what its separate run scores.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from videojepa.config.loader import load_config
from videojepa.eval.config import ProbeConfig
from videojepa.eval.runner import run_probe

LRS = [3e-2, 1e-2, 3e-3, 1e-3, 3e-4]
WDS = [0.0, 0.01, 0.1, 0.5]


def run(data: Path, run_dir: Path, kind: str, epochs: int, lr, wd, cache: bool, encoder: str) -> tuple[float, dict]:
    overrides = [
        f"run.dir={run_dir}",
        "tasks=[]",
        f"data.train={data}/appearance/train.csv",
        f"data.val={data}/appearance/val.csv",
        "probe.checkpoint=none",
        f"probe.kind={kind}",
        f"model.name={encoder}",
        "model.patch_size=8",
        "data.crop_size=64",
        "data.frames_per_clip=16",
        "data.frame_step=1",
        "data.num_workers=0",
        f"optim.epochs={epochs}",
        f"optim.lr={json.dumps(lr)}",
        f"optim.weight_decay={json.dumps(wd)}",
        f"features.cache={str(cache).lower()}",
    ]
    cfg = load_config("demo/probe", overrides, schema=ProbeConfig)
    start = time.perf_counter()
    results = run_probe(cfg, log=None)
    return time.perf_counter() - start, results["tasks"][0]


def compare(data: Path, tmp: Path, kind: str, epochs: int, cache: bool, encoder: str) -> dict:
    name = f"{kind}-{'cached' if cache else 'live'}"
    grid_s, grid = run(data, tmp / f"{name}-grid", kind, epochs, LRS, WDS, cache, encoder)
    separate_s, same = 0.0, True
    for i, cell in enumerate(grid["cells"]):
        s, alone = run(data, tmp / f"{name}-{i}", kind, epochs, [cell["lr"]], [cell["weight_decay"]], cache, encoder)
        separate_s += s
        same &= alone["cells"][0]["top1"] == cell["top1"]
    return {
        "probe": kind,
        "features": "cached" if cache else "encoder every batch",
        "epochs": epochs,
        "cells": len(grid["cells"]),
        "grid_s": round(grid_s, 1),
        "separate_s": round(separate_s, 1),
        "speedup": round(separate_s / grid_s, 2),
        "grid_phases_s": grid["seconds"],
        "best_top1": grid["top1"],
        "cells_equal_separate_runs": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=160, help="synthetic videos (3/4 train)")
    parser.add_argument("--encoder", default="vit_micro")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--live-epochs", type=int, default=2, help="epochs of the encoder-in-the-loop comparison")
    parser.add_argument(
        "--modes", default="linear-cached,attentive-cached,linear-live", help="comma-separated KIND-{cached,live}"
    )
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    from videojepa.data.synth import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_dataset(str(tmp / "data"), num_videos=args.videos, frames=16, size=64, seed=0, workers=1)
        rows = []
        for mode in args.modes.split(","):
            kind, feat = mode.split("-")
            epochs = args.epochs if feat == "cached" else args.live_epochs
            rows.append(compare(tmp / "data", tmp, kind, epochs, feat == "cached", args.encoder))
    result = {
        "benchmark": "probe grid (5 lr x 4 wd) in one pass vs 20 separate runs",
        "setup": {
            "encoder": f"{args.encoder} random init, patch 8",
            "clips": "16x64x64 (512 tokens)",
            "videos": args.videos,
            "task": "synthetic appearance",
            "lr": LRS,
            "weight_decay": WDS,
        },
        "machine": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
        },
        "results": rows,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
