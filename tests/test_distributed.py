"""torchrun with the gloo backend on CPU: the same code path multi-GPU and multi-node runs take."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TORCHRUN_2, tiny_overrides

from videojepa.config import load_config, save_config
from videojepa.train import checkpoint as ckpt
from videojepa.train.logger import read_metrics

STEPS_SCRIPT = Path(__file__).parent / "distributed_steps.py"


def torchrun_jobs(*jobs) -> subprocess.CompletedProcess:
    """One launch of 2 ranks running `distributed_steps.py jobs`: each job a config to pretrain (or resume)."""
    proc = subprocess.run(
        [*TORCHRUN_2, str(STEPS_SCRIPT), "jobs", *map(str, jobs)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-3000:]
    return proc


def resumable_config(data, run_dir, parallel, steps):
    return load_config(
        "demo/vjepa",
        tiny_overrides(
            data,
            run_dir,
            **{
                "train.steps": steps,
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


@pytest.fixture(scope="module")
def resumed(tiny_synth, tmp_path_factory):
    """Two launches of 2 ranks, for DDP and FSDP2 alike: the first trains a run for 4 steps and another straight for
    6; the second resumes the first to 6 steps, and restores a 1-process checkpoint on 2 ranks (the sharded-resume
    test's). Between them: the 4-step FSDP2 run is copied aside (a 2-rank sharded checkpoint to resume in one
    process) and the 1-process run is trained."""
    from videojepa.train.trainer import Trainer

    root = tmp_path_factory.mktemp("resumed")
    first, second, out = [], [], {}
    for parallel in ("ddp", "fsdp2"):
        for name, steps in (("run", 4), ("straight", 6), ("resume", 6)):
            cfg = resumable_config(
                tiny_synth, root / f"{parallel}-{'run' if name == 'resume' else name}", parallel, steps
            )
            save_config(cfg, root / f"{parallel}-{name}.yaml")
            (second if name == "resume" else first).append(root / f"{parallel}-{name}.yaml")
    # the FSDP2 6-step run again with the online probe (rank 0 probes the gathered encoder, rank 1 waits)
    probed = resumable_config(tiny_synth, root / "fsdp2-probed", "fsdp2", 6)
    probed.train.online_probe = {"train": f"{tiny_synth}/motion/train.csv", "val": f"{tiny_synth}/motion/val.csv"}
    probed.train.online_probe.every, probed.train.online_probe.epochs = 3, 2
    save_config(probed, root / "fsdp2-probed.yaml")
    torchrun_jobs(*first, root / "fsdp2-probed.yaml")
    for parallel in ("ddp", "fsdp2"):
        out[f"{parallel}-steps after 4"] = [r["step"] for r in read_metrics(root / f"{parallel}-run", kind="step")]
        out[f"{parallel}-latest after 4"] = ckpt.load_latest(root / f"{parallel}-run")["step"]
    shutil.copytree(root / "fsdp2-run", root / "two")
    single = load_config(
        "demo/vjepa", tiny_overrides(tiny_synth, root / "single", **{"train.steps": 4, "train.checkpoint_every": 4})
    )
    Trainer(single).fit()
    save_config(single, root / "single.yaml")
    out["resume stderr"] = torchrun_jobs(*second, f"restore={root / 'single.yaml'}={root / 'r.pt'}").stderr
    out["root"] = root
    return out


def test_the_online_probe_under_torchrun_leaves_the_training_unchanged(resumed):
    root = resumed["root"]
    losses = [[r["loss"] for r in read_metrics(root / run, kind="step")] for run in ("fsdp2-probed", "fsdp2-straight")]
    assert len(losses[0]) == 6 and losses[0] == losses[1]  # bit for bit
    records = read_metrics(root / "fsdp2-probed", kind="probe")  # rank 0's only
    assert [r["step"] for r in records] == [3, 6] and all(0 <= r["online_probe/knn_top1"] <= 1 for r in records)


@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
def test_torchrun_two_processes_train_and_resume(resumed, parallel):
    root = resumed["root"]
    assert resumed[f"{parallel}-steps after 4"] == [1, 2, 3, 4]  # one writer: rank 0
    assert resumed[f"{parallel}-latest after 4"] == 4
    # extending the run resumes both ranks from the saved step
    assert f"resumed {root / f'{parallel}-run'} at step 4" in resumed["resume stderr"]
    assert ckpt.load_latest(root / f"{parallel}-run")["step"] == 6
    # the same 6 steps without the stop: the same losses, bit for bit
    runs = (root / f"{parallel}-run", root / f"{parallel}-straight")
    losses = [[r["loss"] for r in read_metrics(run, kind="step")] for run in runs]
    assert len(losses[0]) == 6 and losses[0] == losses[1]
    # the exported encoder is whole (gathered from the shards under FSDP2) and loads in one process
    from videojepa import load_encoder

    state = ckpt.load_latest(root / f"{parallel}-run")["method"]
    encoder = load_encoder(root / f"{parallel}-run")
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
# four processes under torchrun (HSDP: 2 replicas of 2 shards)
TORCHRUN_4 = [*TORCHRUN_2[:-1], "4"]


@pytest.fixture(scope="module")
def steps(tiny_synth, tmp_path_factory):
    """tests/distributed_steps.py under torchrun (2 ranks: DDP, FSDP2; 4 ranks: HSDP 2 x 2) and in one process."""
    out, script = tmp_path_factory.mktemp("steps"), Path(__file__).parent / "distributed_steps.py"
    for launcher in (TORCHRUN_2, TORCHRUN_4, [sys.executable]):
        proc = subprocess.run(
            [*launcher, str(script), str(out), str(tiny_synth)], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-3000:]
    return out


def largest_difference(a: dict, b: dict) -> float:
    assert set(a) == set(b)
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def records(steps, name) -> list[dict]:
    return json.loads((steps / f"{name}-records.json").read_text())


def logged_losses(steps, name) -> list[float]:
    return [r["loss"] for r in records(steps, name)]


@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
@pytest.mark.parametrize("method", METHODS)
def test_two_ranks_equal_one_process_with_the_whole_batch(steps, method, parallel):
    """3 AdamW steps (lr 1e-3) of 2 ranks x 2 clips = 1 process x 4 clips: every parameter, the EMA target and the
    teacher, to 1e-5 (measured: <= 3.5e-6), and the logged loss of every step, to 2e-6 (measured <= 1.2e-7).
    Training on half the batch without averaging moves them far more (4e-3; its first loss is 0.07 off)."""
    reference = torch.load(steps / f"{method}-ddp-w1.pt")
    assert largest_difference(torch.load(steps / f"{method}-{parallel}-w2.pt"), reference) < 1e-5
    assert largest_difference(torch.load(steps / f"{method}-half-w1.pt"), reference) > 1e-4
    assert logged_losses(steps, f"{method}-{parallel}-w2") == pytest.approx(
        logged_losses(steps, f"{method}-ddp-w1"), abs=2e-6, rel=0
    )


@pytest.mark.parametrize("method", METHODS)
def test_the_logged_loss_is_averaged_over_ranks(steps, method):
    """Hole: rank 0 logging its own loss. Its first step's loss is the loss of its half of the batch (the half
    run's first loss: the same weights, the same clips), 0.07 away from the whole batch's, which 2 ranks log."""
    whole, half = logged_losses(steps, f"{method}-ddp-w1")[0], logged_losses(steps, f"{method}-half-w1")[0]
    for parallel in ("ddp", "fsdp2"):
        logged = logged_losses(steps, f"{method}-{parallel}-w2")[0]
        assert abs(logged - whole) < 2e-6 and abs(logged - half) > 1e-2, (logged, whole, half)


@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
def test_two_ranks_equal_one_process_with_accumulation_and_clipping(steps, parallel):
    """2 micro-batches per step and a gradient clip (0.05) below every step's norm (~0.4), fp32: 2 ranks equal
    1 process given the same micro-batches (a batch statistic, method.feature_reg's, sees each micro-batch), to
    1e-5 (measured 4.3e-6); the logged loss and the clipped norm too."""
    from distributed_steps import CLIP

    reference, ref_records = torch.load(steps / "clipaccum-ddp-w1.pt"), records(steps, "clipaccum-ddp-w1")
    got = records(steps, f"clipaccum-{parallel}-w2")
    assert all(r["clipped"] and r["grad_norm"] > 4 * CLIP for r in got + ref_records)  # it clips, every step
    assert largest_difference(torch.load(steps / f"clipaccum-{parallel}-w2.pt"), reference) < 1e-5
    assert largest_difference(torch.load(steps / "clipaccum-half-w1.pt"), reference) > 1e-4
    for mine, theirs in zip(got, ref_records, strict=True):
        assert mine["loss"] == pytest.approx(theirs["loss"], abs=2e-6, rel=0)
        assert mine["grad_norm"] == pytest.approx(theirs["grad_norm"], rel=5e-6)  # measured 1.9e-7


def relative_update_difference(steps, name: str, reference: str, prefix: str) -> float:
    """|| update - reference update || / || reference update || over the tensors under `prefix`."""
    init, ref, got = (torch.load(steps / f"{n}.pt") for n in (f"{reference}-init", reference, name))
    keys = [k for k in ref if k.startswith(prefix)]
    num = sum(float(((got[k] - init[k]) - (ref[k] - init[k])).double().pow(2).sum()) for k in keys)
    den = sum(float((ref[k] - init[k]).double().pow(2).sum()) for k in keys)
    return (num / den) ** 0.5


@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
def test_two_ranks_equal_one_process_in_bf16_with_accumulation_and_clipping(steps, parallel):
    """The same in bf16, where rounding differs with the batch split: compared statistically. Logged losses agree
    to 2e-3 (measured <= 1.6e-4; the half batch's first loss is 0.15 off); gradient norms to 1% (measured
    0.17%); the updates of the encoder and of its EMA target to 25% of their size (measured <= 7.9%: Adam's
    per-coordinate steps flip sign on tiny gradients), while the half batch's updates differ by 119%."""
    from distributed_steps import CLIP

    name, reference = f"mixed-{parallel}-w2", "mixed-ddp-w1"
    got, ref_records = records(steps, name), records(steps, reference)
    assert all(r["clipped"] and r["grad_norm"] > 4 * CLIP for r in got + ref_records)
    for mine, theirs in zip(got, ref_records, strict=True):
        assert mine["loss"] == pytest.approx(theirs["loss"], abs=2e-3)
        assert mine["grad_norm"] == pytest.approx(theirs["grad_norm"], rel=1e-2)
    assert abs(logged_losses(steps, "mixed-half-w1")[0] - ref_records[0]["loss"]) > 2e-2
    for prefix in ("encoder.", "target_encoder."):
        assert relative_update_difference(steps, name, reference, prefix) < 0.25, prefix
        assert relative_update_difference(steps, "mixed-half-w1", reference, prefix) > 0.8, prefix


def test_hsdp_equals_one_process(steps):
    """HSDP: 2 replicas of the whole method over 2 ranks (pure replication), and 2 replicas of 2 shards over
    4 ranks, each equal 1 process with the whole batch (measured <= 4.4e-6), the logged losses too."""
    reference = torch.load(steps / "vjepa-ddp-w1.pt")
    for name in ("vjepa-hsdp-w2", "vjepa-hsdp2x2-w4"):
        assert largest_difference(torch.load(steps / f"{name}.pt"), reference) < 1e-5, name
        assert logged_losses(steps, name) == pytest.approx(logged_losses(steps, "vjepa-ddp-w1"), abs=2e-6, rel=0)


def test_a_sharded_and_a_replicated_teacher_give_the_same_losses(steps):
    replicated, sharded = (logged_losses(steps, f"teacher-shard-{s}") for s in (False, True))
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


def test_sharded_checkpoints_resume_on_another_number_of_ranks(resumed, one_thread):
    """FSDP2 on 2 ranks saves; 1 process resumes it, and 2 ranks resume a 1-process checkpoint: the weights,
    the EMA target and the optimiser state each gets are the saved ones, the data cursor the same sample."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    from videojepa.train.trainer import Trainer

    root = resumed["root"]
    saved = ckpt.load_latest(root / "two")  # the 4-step FSDP2 run of 2 ranks, copied before it was resumed
    cursor = saved["loader"]
    assert saved["step"] == 4 and saved["world_size"] == 2 and cursor["consumed"] == 2 * cursor["position"] > 0

    one = Trainer(load_config(root / "fsdp2-run.yaml", [f"run.dir={root / 'two'}"]))  # the same run, one process
    one.prepare_run_dir()
    one.build_data()
    assert one.resume()
    method, optimizer = get_state_dict(one.method, one.optimizer, options=StateDictOptions(full_state_dict=True))
    restored_equals_saved({"method": method, "optimizer": optimizer["state"], "step": one.step}, saved)
    # one rank continues after every sample the two consumed in the epoch
    assert (one.loader.sampler.epoch, one.loader.sampler.position) == (cursor["epoch"], cursor["consumed"])

    # 2 ranks restored the 1-process run's checkpoint (the fixture's second launch)
    restored = torch.load(root / "r.pt", weights_only=True)
    saved = ckpt.load_latest(root / "single")
    restored_equals_saved(restored, saved)
    assert restored["loader"]["epoch"] == saved["loader"]["epoch"]
    assert restored["loader"]["consumed"] == saved["loader"]["consumed"] == 2 * restored["loader"]["position"]
