"""How far pretraining moved each run's exported encoder from its initial weights (JSON on stdout).

    python experiments/weight_drift.py runs/sweep/vjepa/run runs/sweep/videomae/run ...

For each run directory: ||W - W0|| / ||W0|| over all encoder weights, where W is the run's exported encoder
(encoder.safetensors; V-JEPA: the EMA target) and W0 the same network as the run's config builds it before
its first step (the Trainer's seeded initialisation). `videojepa demo` reports the same number from its
step-0 snapshots.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def drift(run_dir: str) -> float:
    from safetensors.torch import load_file

    from videojepa.config.loader import load_config
    from videojepa.train.trainer import Trainer

    cfg = load_config(str(Path(run_dir) / "config.yaml"))
    initial = {k: v.detach().float() for k, v in Trainer(cfg).method.export_encoder().state_dict().items()}
    final = load_file(str(Path(run_dir) / "encoder.safetensors"))
    moved = sum(float((final[k].float() - w0).pow(2).sum()) for k, w0 in initial.items())
    return (moved / sum(float(w0.pow(2).sum()) for w0 in initial.values())) ** 0.5


def main() -> None:
    print(json.dumps({run: round(drift(run), 4) for run in sys.argv[1:]}, indent=1))


if __name__ == "__main__":
    main()
