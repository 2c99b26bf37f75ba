"""torchrun with the gloo backend on CPU: the same code path multi-GPU and multi-node runs take."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TORCHRUN_2, tiny_overrides

from videojepa.config import load_config, save_config
from videojepa.train import checkpoint as ckpt
from videojepa.train.logger import read_metrics


@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
def test_torchrun_two_processes_train_and_resume(tiny_synth, tmp_path, parallel):
    cfg = load_config(
        "demo/vjepa",
        tiny_overrides(
            tiny_synth,
            tmp_path / "run",
            **{
                "train.steps": 4,
                "train.checkpoint_every": 2,
                "train.log_every": 2,
                "train.parallel": parallel,
                # schedules that do not depend on train.steps, so that 4 steps + 2 more are the same run as 6 straight
                "train.final_lr": 2e-3,
                "train.final_weight_decay": 0.04,
                "train.weight_decay": 0.04,
                "method.ema": "[0.999, 0.999]",
            },
        ),
    )
    save_config(cfg, tmp_path / "cfg.yaml")
    command = [
        *TORCHRUN_2,
        "-m",
        "videojepa",
        "pretrain",
        str(tmp_path / "cfg.yaml"),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-3000:]
    records = read_metrics(tmp_path / "run", kind="step")
    assert [r["step"] for r in records] == [1, 2, 3, 4]  # one writer: rank 0
    assert ckpt.load_latest(tmp_path / "run")["step"] == 4
    # extending the run resumes both ranks from the saved step
    proc = subprocess.run(command + ["train.steps=6"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-3000:]
    assert "resumed" in proc.stderr and ckpt.load_latest(tmp_path / "run")["step"] == 6
    # the same 6 steps without the stop: the same losses, bit for bit
    proc = subprocess.run(
        command + ["train.steps=6", f"run.dir={tmp_path / 'straight'}"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-3000:]
    losses = [[r["loss"] for r in read_metrics(run, kind="step")] for run in (tmp_path / "run", tmp_path / "straight")]
    assert len(losses[0]) == 6 and losses[0] == losses[1]
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
    cfg = load_config(
        "demo/vjepa",
        tiny_overrides(
            tiny_synth,
            run,
            **{"train.steps": 500, "train.checkpoint_every": 1000, "train.log_every": 100, "train.parallel": parallel},
        ),
    )
    save_config(cfg, tmp_path / "cfg.yaml")
    proc = subprocess.Popen(
        [
            *TORCHRUN_2,
            "-m",
            "videojepa",
            "pretrain",
            str(tmp_path / "cfg.yaml"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
    for launcher in (TORCHRUN_2, [sys.executable]):
        proc = subprocess.run(
            [*launcher, str(script), str(out), str(tiny_synth)], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-3000:]
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


def restored_equals_saved(restored: dict, saved: dict) -> None:
    assert restored["step"] == saved["step"]
    assert set(restored["method"]) == set(saved["method"])
    for key, value in saved["method"].items():
        assert torch.equal(restored["method"][key].float(), value.float()), key
    for name, slots in saved["optimizer"]["state"].items():
        for slot, value in slots.items():
            assert torch.equal(restored["optimizer"][name][slot], value), (name, slot)


def test_sharded_checkpoints_resume_on_another_number_of_ranks(tiny_synth, tmp_path):
    """FSDP2 on 2 ranks saves; 1 process resumes it, and 2 ranks resume a 1-process checkpoint: the weights,
    the EMA target and the optimiser state each gets are the saved ones, the data cursor the same sample."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    from videojepa.train.trainer import Trainer

    script = Path(__file__).parent / "distributed_steps.py"
    torchrun = TORCHRUN_2
    two = load_config(
        "demo/vjepa",
        tiny_overrides(
            tiny_synth, tmp_path / "two", **{"train.steps": 4, "train.checkpoint_every": 4, "train.parallel": "fsdp2"}
        ),
    )
    save_config(two, tmp_path / "two.yaml")
    proc = subprocess.run(
        [*torchrun, "-m", "videojepa", "pretrain", str(tmp_path / "two.yaml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-3000:]
    saved = ckpt.load_latest(tmp_path / "two")
    cursor = saved["loader"]
    assert saved["world_size"] == 2 and cursor["consumed"] == 2 * cursor["position"] > 0

    one = Trainer(two)  # the same run, one process
    one.prepare_run_dir()
    one.build_data()
    assert one.resume()
    method, optimizer = get_state_dict(one.method, one.optimizer, options=StateDictOptions(full_state_dict=True))
    restored_equals_saved({"method": method, "optimizer": optimizer["state"], "step": one.step}, saved)
    # one rank continues after every sample the two consumed in the epoch
    assert (one.loader.sampler.epoch, one.loader.sampler.position) == (cursor["epoch"], cursor["consumed"])

    single = load_config(
        "demo/vjepa", tiny_overrides(tiny_synth, tmp_path / "single", **{"train.steps": 4, "train.checkpoint_every": 4})
    )
    Trainer(single).fit()
    save_config(single, tmp_path / "single.yaml")
    proc = subprocess.run(
        [*torchrun, str(script), "restore", str(tmp_path / "single.yaml"), str(tmp_path / "r.pt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-3000:]
    restored = torch.load(tmp_path / "r.pt", weights_only=True)
    saved = ckpt.load_latest(tmp_path / "single")
    restored_equals_saved(restored, saved)
    assert restored["loader"]["epoch"] == saved["loader"]["epoch"]
    assert restored["loader"]["consumed"] == saved["loader"]["consumed"] == 2 * restored["loader"]["position"]
