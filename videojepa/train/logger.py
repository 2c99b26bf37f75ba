"""Run logging: a JSON-lines metrics file always, TensorBoard when installed, a log file."""

from __future__ import annotations

import json
import logging
import statistics
import sys
from pathlib import Path

from videojepa.errors import UserError
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


# Record kinds in metrics.jsonl: "step" ({"kind", "step", "loss"}) after every optimiser step, "log" (every
# metric and monitor) every train.log_every steps, "val" (fine-tuning: validation scores) at each checkpoint,
# "probe" (a step hook's results, e.g. the online probe's top-1 and its cost) at the hook's steps.
KINDS = ("step", "log", "val", "probe")


class MetricsWriter:
    """metrics.jsonl: one "step" record per step, a full "log" record every log_every steps."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        if resume_step is None:
            atomic_write_text(path, "")
        else:  # drop records a killed run wrote after its last checkpoint; atomically, so a crash keeps them all
            kept = (
                [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= resume_step]
                if path.exists()
                else []
            )
            atomic_write_text(path, "".join(line + "\n" for line in kept))
        self.file = open(path, "a")  # noqa: SIM115 (open for the writer's lifetime, closed by close())
        self.tensorboard = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the tensorboard package is optional; any other failure of the writer is not hidden
            log.info("TensorBoard logs are not written: the tensorboard package is not installed")
        else:
            self.tensorboard = SummaryWriter(str(path.parent / "tensorboard"))

    def write(self, kind: str, record: dict) -> None:
        if kind not in KINDS:
            raise ValueError(f"metric record kind must be one of {KINDS}, got {kind!r}")
        self.file.write(json.dumps({"kind": kind, **record}) + "\n")
        self.file.flush()
        if self.tensorboard is not None and kind in ("log", "probe"):
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def read_metrics(run_dir: str | Path, kind: str | None = None) -> list[dict]:
    """The records of a run's metrics.jsonl, all or those of one kind ("step" or "log")."""
    path = Path(run_dir) / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    for record in records:  # files written before records carried their kind
        record.setdefault("kind", "step" if set(record) == {"step", "loss"} else "log")
    return records if kind is None else [r for r in records if r["kind"] == kind]


def step_rate(run_dir: str | Path) -> tuple[float, dict]:
    """The clips/s a run's training step reaches without waiting for data, from its metrics.jsonl: the logged
    clips/s divided by (1 - data-wait fraction), medians over its "log" records (`videojepa data bench --run`)."""
    try:
        records = read_metrics(run_dir, kind="log")
    except FileNotFoundError:
        raise UserError(f"--run {run_dir}: no metrics.jsonl there (give a pretrain run directory)") from None
    records = [r for r in records if r.get("clips_per_s")]
    if len(records) > 1:
        records = records[1:]  # the first window holds start-up (worker start, compilation)
    if not records:
        raise UserError(f"--run {run_dir}: metrics.jsonl has no logged clips/s yet")
    rate = statistics.median(r["clips_per_s"] for r in records)
    wait = statistics.median(r.get("data_wait_fraction", 0.0) for r in records)
    step_rate = rate / max(1.0 - wait, 1e-3)
    return step_rate, {
        "logged_clips_per_s": round(rate, 2),
        "data_wait_fraction": round(wait, 4),
        "step_clips_per_s": round(step_rate, 2),
        "records": len(records),
    }
