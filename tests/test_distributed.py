"""torchrun with the gloo backend on CPU: the same code path multi-GPU and multi-node runs take."""
import subprocess
import sys

from conftest import tiny_overrides
from videojepa.config import load_config, save_config
from videojepa.train import checkpoint as ckpt
from videojepa.train.logger import read_metrics


def test_torchrun_two_processes_train_and_resume(tiny_synth, tmp_path):
    cfg = load_config("demo/vjepa", tiny_overrides(tiny_synth, tmp_path / "run", **{
        "train.steps": 4, "train.checkpoint_every": 2, "train.log_every": 2}))
    save_config(cfg, tmp_path / "cfg.yaml")
    # --standalone: each launch rendezvouses on a free port (a fixed one failed once when the second launch
    # came right after the first)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "videojepa", "pretrain", str(tmp_path / "cfg.yaml")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_metrics(tmp_path / "run", kind="step")
    assert [r["step"] for r in records] == [1, 2, 3, 4]  # one writer: rank 0
    assert ckpt.load_latest(tmp_path / "run")["step"] == 4
    # extending the run resumes both ranks from the saved step
    proc = subprocess.run(command + ["train.steps=6"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed" in proc.stderr and ckpt.load_latest(tmp_path / "run")["step"] == 6
