"""Resume is pickle-free, loud when it cannot resume, and exact on every interruption path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch
from conftest import tiny_overrides

from videojepa.config import load_config, save_config
from videojepa.train import checkpoint as ckpt
from videojepa.train.logger import read_metrics
from videojepa.train.trainer import Trainer


def make_trainer(data, run_dir, **extra):
    return Trainer(load_config("demo/vjepa", tiny_overrides(data, run_dir, **extra)))


def losses(run_dir):
    return [r["loss"] for r in read_metrics(run_dir, kind="step")]


class PlantedPayload:
    """Unpickling this calls os.system: what a planted checkpoint would do under weights_only=False."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def interrupt_during_step(trainer, at_call: int, signum: int) -> None:
    """Send `signum` to this process from inside the method's forward of step `at_call` (1-based)."""
    forward, calls = trainer.method.forward, [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at_call:
            os.kill(os.getpid(), signum)
        return forward(*args, **kwargs)

    trainer.method.forward = wrapped


@pytest.mark.parametrize(
    "precision,workers,signum", [("fp32", 0, signal.SIGTERM), ("bf16", 1, signal.SIGTERM), ("fp32", 0, signal.SIGINT)]
)
def test_signal_mid_step_resumes_onto_the_uninterrupted_trajectory(
    tiny_synth, tmp_path, precision, workers, signum, one_thread
):
    extra = {
        "train.steps": 8,
        "train.checkpoint_every": 100,
        "train.log_every": 4,
        "train.precision": precision,
        "data.num_workers": workers,
    }
    make_trainer(tiny_synth, tmp_path / "a", **extra).fit()

    interrupted = make_trainer(tiny_synth, tmp_path / "b", **extra)
    interrupt_during_step(interrupted, at_call=3, signum=signum)
    if signum == signal.SIGINT:
        with pytest.raises(KeyboardInterrupt):
            interrupted.fit()
    else:
        interrupted.fit()
    # saved at the boundary after the interrupted step, under that step's name
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "b")] == ["step_00000003"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the trainer's handlers are gone again
    make_trainer(tiny_synth, tmp_path / "b", **extra).fit()

    assert len(losses(tmp_path / "a")) == 8 and losses(tmp_path / "a") == losses(tmp_path / "b")
    a, b = ckpt.load_latest(tmp_path / "a"), ckpt.load_latest(tmp_path / "b")
    assert a["step"] == b["step"] == 8
    assert all(torch.equal(a["method"][k], b["method"][k]) for k in a["method"])


def test_checkpoints_hold_only_tensors_and_plain_containers(tiny_synth, tmp_path):
    import json

    trainer = make_trainer(tiny_synth, tmp_path, **{"train.steps": 2})
    trainer.fit()
    path = ckpt.list_checkpoints(tmp_path)[-1]
    record = json.loads((path / "record.json").read_text())["state"]  # everything but tensors is JSON
    assert record["step"] == 2 and record["method"]["encoder.patch_embed.weight"] == {
        "__tensor__": "method/encoder.patch_embed.weight"
    }
    assert sorted(p.name for p in path.iterdir()) == [".metadata", "__0_0.distcp", "record.json"]
    state = ckpt.read_checkpoint(path)
    assert torch.equal(
        state["method"]["encoder.patch_embed.weight"], trainer.method.state_dict()["encoder.patch_embed.weight"]
    )
    with pytest.raises(TypeError, match=r"checkpoint.extra is a PlantedPayload"):
        ckpt.save_checkpoint(tmp_path, 9, {"step": 9, "extra": PlantedPayload(tmp_path / "x")}, keep=3)


def _pretrain(config_path, run_dir):
    return subprocess.run(
        [sys.executable, "-m", "videojepa", "pretrain", str(config_path), f"run.dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_a_planted_pickle_is_refused_and_its_code_never_runs(tiny_synth, tmp_path):
    run = tmp_path / "run"
    cfg = load_config("demo/vjepa", tiny_overrides(tiny_synth, run, **{"train.steps": 4, "train.checkpoint_every": 2}))
    make_trainer(tiny_synth, run, **{"train.steps": 4, "train.checkpoint_every": 2}).fit()
    save_config(cfg, tmp_path / "cfg.yaml")
    marker = tmp_path / "pwned"
    planted = ckpt.checkpoint_dir(run) / "step_00000009.pt"
    torch.save({"step": 9, "payload": PlantedPayload(marker)}, planted)

    # the planted newest file is refused and resume falls back to the real step-4 checkpoint
    done = _pretrain(tmp_path / "cfg.yaml", run)
    assert done.returncode == 0, done.stderr
    assert "step_00000009.pt: refused: loading it would import or call code" in done.stderr
    assert "already trained for 4 steps" in done.stderr
    assert not marker.exists()

    # a planted pickle in DCP's index of a sharded checkpoint is refused too, never imported
    import pickle
    import shutil

    index = ckpt.checkpoint_dir(run) / "step_00000004" / ".metadata"
    index.write_bytes(pickle.dumps(PlantedPayload(marker)))
    # with only planted or torn checkpoints left, the run stops with the list and its history stays as it was
    shutil.rmtree(ckpt.checkpoint_dir(run) / "step_00000002")
    (ckpt.checkpoint_dir(run) / "step_00000008.pt").write_bytes(b"PK\x03\x04 torn")
    metrics_before, config_before = (run / "metrics.jsonl").read_bytes(), (run / "config.yaml").read_bytes()
    failed = _pretrain(tmp_path / "cfg.yaml", run)
    assert failed.returncode == 2
    message = failed.stderr.strip().splitlines()[-1]
    assert message.startswith("videojepa pretrain: error: ") and "no checkpoint could be loaded" in message
    assert "step_00000009.pt: refused" in message and "step_00000008.pt: unreadable" in message
    assert "step_00000004: unreadable (refused: the checkpoint index would import" in message
    assert not marker.exists()
    assert (run / "metrics.jsonl").read_bytes() == metrics_before
    assert (run / "config.yaml").read_bytes() == config_before


def test_a_convert_folder_is_never_trained_over(tiny_synth, tmp_path):
    from videojepa.encoder_io import save_encoder
    from videojepa.errors import UserError
    from videojepa.models.registry import create_model

    save_encoder(create_model("vit_pico", patch_size=8), tmp_path / "encoder.safetensors")
    with pytest.raises(UserError, match="no config.yaml"):
        make_trainer(tiny_synth, tmp_path).fit()


def test_encoder_snapshots_are_kept_and_a_resumed_run_writes_the_same_ones(tiny_synth, tmp_path, one_thread):
    from safetensors.torch import load_file

    from videojepa.encoder_io import read_card
    from videojepa.train.run_dir import snapshot_path

    extra = {"train.steps": 6, "train.checkpoint_every": 100, "train.encoder_snapshots": [4, 0, 2, 9]}
    Trainer(load_config("demo/vjepa", tiny_overrides(tiny_synth, tmp_path / "whole", **extra))).fit()
    whole = tmp_path / "whole"
    kept = ["step_00000000.safetensors", "step_00000002.safetensors", "step_00000004.safetensors"]
    assert sorted(p.name for p in (whole / "encoders").iterdir()) == kept  # step 0: the initial weights
    assert read_card(snapshot_path(whole, 2)).step == 2 and read_card(whole / "encoder.safetensors").step == 6
    two, four = load_file(snapshot_path(whole, 2)), load_file(snapshot_path(whole, 4))
    assert any(not torch.equal(two[k], four[k]) for k in two)  # the encoder moved between them

    # killed at step 4's boundary (checkpoints every 3 steps), resumed: the snapshots equal the uninterrupted run's
    cut = tmp_path / "cut"
    first = make_trainer(tiny_synth, cut, **{**extra, "train.checkpoint_every": 3})
    interrupt_during_step(first, at_call=4, signum=signal.SIGTERM)
    first.fit()
    assert first.step == 4 and snapshot_path(cut, 4).exists()  # the stop came at step 4's boundary
    make_trainer(tiny_synth, cut, **{**extra, "train.checkpoint_every": 3}).fit()
    for step in (0, 2, 4):
        got, want = load_file(snapshot_path(cut, step)), load_file(snapshot_path(whole, step))
        assert all(torch.equal(got[k], want[k]) for k in want), step
    with pytest.raises(Exception, match="snapshot steps must be >= 0"):
        load_config("demo/vjepa", ["train.encoder_snapshots=[-1,3]"])


def test_a_run_saved_before_a_config_key_existed_resumes_as_its_default(tiny_synth, tmp_path, one_thread):
    import yaml

    run = tmp_path / "run"
    make_trainer(tiny_synth, run, **{"train.steps": 2}).fit()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    del saved["method"]["loss_exponent"], saved["train"]["encoder_snapshots"]  # as if made before these keys existed
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    resumed = make_trainer(tiny_synth, run, **{"train.steps": 4})
    with pytest.warns(UserWarning, match="train.steps changed from 2 to 4"):
        resumed.fit()
    assert resumed.step == 4
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(Exception, match=r"method\.loss_exponent: run has 1\.0, now 2\.0"):
        make_trainer(tiny_synth, run, **{"train.steps": 6, "method.loss_exponent": 2.0}).fit()


def test_a_run_saved_with_every_methods_keys_in_one_section_resumes(tiny_synth, tmp_path, one_thread):
    """Runs saved before each method had its own section hold every method's keys under `method:`; those its
    method never read are left out when it resumes, and its config file still loads (they are ignored)."""
    import yaml

    run = tmp_path / "run"
    make_trainer(tiny_synth, run, **{"train.steps": 2}).fit()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert set(saved["method"]) == {"name", "loss_exponent", "ema", "feature_reg"}
    saved["method"].update(teacher={"checkpoint": None, "model": None, "shard": False}, pixel_norm="tubelet")
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    assert load_config(run / "config.yaml").method == load_config("demo/vjepa", tiny_overrides(tiny_synth, run)).method
    resumed = make_trainer(tiny_synth, run, **{"train.steps": 3})
    with pytest.warns(UserWarning, match="train.steps changed from 2 to 3"):
        resumed.fit()
    assert resumed.step == 3
