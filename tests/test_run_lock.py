"""One training launch per run directory: a second one is refused in one line naming the holder and changes
nothing of the first's; a run killed with SIGKILL leaves no lock that blocks its resume."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import tiny_overrides

from videojepa.config import load_config, save_config
from videojepa.train import checkpoint as ckpt
from videojepa.train.logger import read_metrics
from videojepa.train.run_dir import RunDirectory, RunLockedError
from videojepa.train.trainer import Trainer


def launch(config_path, *overrides):
    return subprocess.Popen(
        [sys.executable, "-m", "videojepa", "pretrain", str(config_path), *overrides],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, process, what, timeout=300):
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before {what}: {process.stderr.read()[-2000:]}"
        assert time.time() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.05)


def steps(run):
    return [r["step"] for r in read_metrics(run, kind="step")] if (run / "metrics.jsonl").exists() else []


def test_a_second_launch_is_refused_and_a_killed_run_still_resumes(tiny_synth, tmp_path, cli):
    run = tmp_path / "run"
    cfg = load_config(
        "demo/vjepa", tiny_overrides(tiny_synth, run, **{"train.steps": 100_000, "train.checkpoint_every": 2})
    )
    save_config(cfg, tmp_path / "cfg.yaml")
    first = launch(tmp_path / "cfg.yaml")
    try:
        wait_for(lambda: ckpt.list_checkpoints(run), first, "a checkpoint")
        config_before = (run / "config.yaml").read_text()
        log_before = (run / "train.log").read_text()
        code, out, err = cli("pretrain", tmp_path / "cfg.yaml")  # the same run, launched again
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert f"is in use by another training launch (host {socket.gethostname()}, pid {first.pid}," in err
        assert RunDirectory(run).holder()["pid"] == first.pid
        first.send_signal(signal.SIGTERM)  # the first run stops at a step boundary with a checkpoint
        assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
    done = steps(run)
    assert done == list(range(1, len(done) + 1))  # every step once: nothing written twice or by the refused launch
    assert ckpt.load_latest(run)["step"] == done[-1]
    assert (run / "config.yaml").read_text() == config_before
    assert (run / "train.log").read_text().startswith(log_before) and "in use" not in (run / "train.log").read_text()

    # kill -9 with a data-loader worker alive (it holds the lock's file a moment longer), then resume at once
    killed = launch(tmp_path / "cfg.yaml", "data.num_workers=1")
    target = ckpt.checkpoint_dir(run) / f"step_{(done[-1] // 2 + 1) * 2:08d}"  # its next periodic checkpoint
    try:
        wait_for(target.exists, killed, "a checkpoint after the resume")
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert RunDirectory(run).holder()["pid"] == killed.pid
    saved = ckpt.load_latest(run)["step"]
    trainer = Trainer(load_config(tmp_path / "cfg.yaml", [f"train.steps={saved + 2}"]))
    with pytest.warns(UserWarning, match=rf"train.steps changed from \d+ to {saved + 2}"):
        trainer.fit()  # not refused: the killed run's lock is gone with its processes
    assert trainer.step == saved + 2 and steps(run)[-2:] == [saved + 1, saved + 2]
    assert RunDirectory(run).holder()["pid"] == os.getpid()


def test_the_lock_is_exclusive_released_and_names_its_holder(tmp_path):
    first, second = RunDirectory(tmp_path / "run"), RunDirectory(tmp_path / "run")
    first.lock()
    holder = json.loads((tmp_path / "run" / ".lock").read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    with pytest.raises(RunLockedError, match=re.escape(f"pid {os.getpid()}, since {holder['since']})")):
        second.lock()
    first.unlock()
    second.lock()  # free again
    second.unlock()
