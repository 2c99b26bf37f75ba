"""torchrun with the gloo backend on CPU: the same code path multi-GPU and multi-node runs take."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import tiny_overrides
from videojepa.config import load_config, save_config
from videojepa.train import checkpoint as ckpt
from videojepa.train.logger import read_metrics


@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
def test_torchrun_two_processes_train_and_resume(tiny_synth, tmp_path, parallel):
    cfg = load_config("demo/vjepa", tiny_overrides(tiny_synth, tmp_path / "run", **{
        "train.steps": 4, "train.checkpoint_every": 2, "train.log_every": 2, "train.parallel": parallel}))
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
    # the exported encoder is whole (gathered from the shards under FSDP2) and loads in one process
    from videojepa import load_encoder

    state = ckpt.load_latest(tmp_path / "run")["method"]
    encoder = load_encoder(tmp_path / "run")
    assert all(torch.equal(v, state[f"target_encoder.{k}"]) for k, v in encoder.state_dict().items())


@pytest.mark.parametrize("target,parallel", [("rank", "ddp"), ("agent", "ddp"), ("rank", "fsdp2")])
def test_sigterm_to_one_rank_or_the_agent_stops_both_ranks_after_the_same_step(tiny_synth, tmp_path, target, parallel):
    """Preemption: the signal reaches one worker (or torchrun, which forwards it); the ranks agree on stopping,
    both save the same step and end; none hangs in a collective."""
    import os
    import signal
    import time

    run = tmp_path / "run"
    cfg = load_config("demo/vjepa", tiny_overrides(tiny_synth, run, **{
        "train.steps": 500, "train.checkpoint_every": 1000, "train.log_every": 100, "train.parallel": parallel}))
    save_config(cfg, tmp_path / "cfg.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "videojepa", "pretrain", str(tmp_path / "cfg.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not ((run / "metrics.jsonl").exists() and len((run / "metrics.jsonl").read_text().splitlines()) >= 3):
        assert time.time() < deadline and proc.poll() is None, "the run did not start"
        time.sleep(0.1)
    workers = (Path("/proc") / str(proc.pid) / "task" / str(proc.pid) / "children").read_text().split()
    os.kill(int(workers[0]) if target == "rank" else proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    saved = [line.split("at step ")[1].split(",")[0] for line in err.splitlines() if "checkpoint saved at step" in line]
    step = ckpt.load_latest(run)["step"]
    assert len(saved) == 2 and set(saved) == {str(step)} and step < 500, err[-3000:]
    if target == "rank":  # torchrun itself reports a SIGTERM it received as a failure; the workers end cleanly
        assert proc.returncode == 0, err[-3000:]
    assert [r["step"] for r in read_metrics(run, kind="step")][-1] == step


METHODS = ("vjepa", "salt_student", "salt_teacher")


@pytest.fixture(scope="module")
def steps(tiny_synth, tmp_path_factory):
    """tests/distributed_steps.py under torchrun (2 ranks, DDP then FSDP2) and in one process."""
    out, script = tmp_path_factory.mktemp("steps"), Path(__file__).parent / "distributed_steps.py"
    for launcher in ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
                     [sys.executable]):
        proc = subprocess.run([*launcher, str(script), str(out), str(tiny_synth)], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def largest_difference(a: dict, b: dict) -> float:
    assert set(a) == set(b)
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
@pytest.mark.parametrize("method", METHODS)
def test_two_ranks_equal_one_process_with_the_whole_batch(steps, method, parallel):
    """3 AdamW steps (lr 1e-3) of 2 ranks x 2 clips = 1 process x 4 clips: every parameter, the EMA target and the
    teacher, to 1e-5 (measured: <= 1.2e-6). Training on half the batch without averaging moves them far more."""
    reference = torch.load(steps / f"{method}-ddp-w1.pt")
    assert largest_difference(torch.load(steps / f"{method}-{parallel}-w2.pt"), reference) < 1e-5
    assert largest_difference(torch.load(steps / f"{method}-half-w1.pt"), reference) > 1e-4


def test_hsdp_replicating_over_both_ranks_equals_one_process(steps):
    reference = torch.load(steps / "vjepa-ddp-w1.pt")
    assert largest_difference(torch.load(steps / "vjepa-hsdp-w2.pt"), reference) < 1e-5


def test_a_sharded_and_a_replicated_teacher_give_the_same_losses(steps):
    replicated, sharded = (json.loads((steps / f"teacher-shard-{s}-losses.json").read_text()) for s in (False, True))
    assert replicated == pytest.approx(sharded, rel=1e-6, abs=0)


def test_an_ema_target_sharded_unlike_its_encoder_is_refused(steps):
    outcomes = json.loads((steps / "ema-alignment.json").read_text())
    assert outcomes["as wrapped"] == "accepted"
    for case in ("unsharded", "sharded on another dimension"):
        assert outcomes[case].startswith("EMA target 'target_encoder' is not sharded like the network it follows"), case


def test_ranks_read_disjoint_halves_of_the_global_batch(steps):
    rank0, rank1 = (json.loads((steps / f"samples-w2-r{r}.json").read_text()) for r in (0, 1))
    single = json.loads((steps / "samples-w1-r0.json").read_text())
    for a, b, whole in zip(rank0, rank1, single, strict=True):
        assert not set(a) & set(b) and sorted(a + b) == sorted(whole)
