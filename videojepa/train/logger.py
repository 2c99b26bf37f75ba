"""Run logging: a JSON-lines metrics file always, TensorBoard when installed, a log file."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from videojepa.utils.files import atomic_write_text

log = logging.getLogger("videojepa.train")


def setup_logging(run_dir: Path | None, is_main: bool) -> None:
    log.setLevel(logging.INFO if is_main else logging.WARNING)
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter)
    log.addHandler(console)
    if run_dir is not None and is_main:
        file = logging.FileHandler(run_dir / "train.log")
        file.setFormatter(formatter)
        log.addHandler(file)


class MetricsWriter:
    """metrics.jsonl: one record per step ({"step", "loss"}), full records every log_every."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        if resume_step is None:
            atomic_write_text(path, "")
        else:  # drop records a killed run wrote after its last checkpoint; atomically, so a crash keeps them all
            kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= resume_step] \
                if path.exists() else []
            atomic_write_text(path, "".join(line + "\n" for line in kept))
        self.file = open(path, "a")
        self.tensorboard = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the tensorboard package is optional; any other failure of the writer is not hidden
            log.info("TensorBoard logs are not written: the tensorboard package is not installed")
        else:
            self.tensorboard = SummaryWriter(str(path.parent / "tensorboard"))

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tensorboard is not None and len(record) > 2:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line]
