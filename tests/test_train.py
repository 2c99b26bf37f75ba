import logging
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_overrides

from videojepa.config import load_config
from videojepa.errors import UserError
from videojepa.train import checkpoint as ckpt
from videojepa.train.logger import read_metrics
from videojepa.train.trainer import Trainer, TrainingError


def make_trainer(preset, data, run_dir, **extra):
    return Trainer(load_config(preset, tiny_overrides(data, run_dir, **extra)))


def first_batch(trainer):
    trainer.build_data()
    batch = next(iter(trainer.loader))
    return trainer.video_to_device(batch), list(batch["masks"])


@pytest.fixture(scope="module")
def teacher_run(tiny_synth, tmp_path_factory):
    run = tmp_path_factory.mktemp("teacher")
    make_trainer("demo/salt_teacher", tiny_synth, run, **{"train.steps": 4}).fit()
    return run


@pytest.mark.parametrize("preset", ["demo/vjepa", "demo/salt_teacher", "demo/salt_student", "demo/videomae"])
def test_demo_presets_train_and_loss_falls(preset, tiny_synth, teacher_run, tmp_path):
    extra = {"method.teacher.checkpoint": teacher_run} if preset.endswith("student") else {}
    make_trainer(preset, tiny_synth, tmp_path, **extra).fit()
    losses = [r["loss"] for r in read_metrics(tmp_path, kind="step")]
    assert len(losses) == 20 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-5:]) < sum(losses[:5]), losses
    full = read_metrics(tmp_path, kind="log")
    for key in (
        "lr",
        "wd",
        "grad_norm",
        "clip_rate",
        "data_wait_fraction",
        "clips_per_s",
        "flops_per_s",
        "feature_std",
        "feature_rank",
        "target_std",
        "pred_std",
        "loss_mask0",
        "loss_mask0",
    ):
        assert key in full[-1], key
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "encoder.safetensors").exists()


def test_vjepa_target_follows_the_ema_formula(tiny_synth, tmp_path):
    trainer = make_trainer("demo/vjepa", tiny_synth, tmp_path, **{"method.ema": "[0.9, 0.95]"})
    video, masks = first_batch(trainer)
    method = trainer.method
    for _ in range(2):
        old_target = [p.clone() for p in method.target_encoder.parameters()]
        momentum = trainer.train_step(video, masks)["momentum"]
        assert momentum == pytest.approx(0.9 + 0.05 * (trainer.step - 1) / 20)
        for old, target, online in zip(old_target, method.target_encoder.parameters(), method.encoder.parameters()):
            # target <- m * target + (1 - m) * online, bit for bit (same fused multiply-add order)
            assert torch.equal(target, torch.add(old * momentum, online, alpha=1 - momentum))
    assert not any(p.requires_grad for p in method.target_encoder.parameters())


def test_salt_student_teacher_is_frozen_and_may_be_wider(tiny_synth, teacher_run, tmp_path):
    from videojepa import create_model, save_encoder

    wide = create_model("vit_nano", patch_size=8)  # 96 wide; the student is 64 wide
    save_encoder(wide, tmp_path / "wide.safetensors")
    trainer = make_trainer(
        "demo/salt_student",
        tiny_synth,
        tmp_path / "run",
        **{"method.teacher.checkpoint": tmp_path / "wide.safetensors"},
    )
    method = trainer.method
    assert method.teacher.embed_dim == 96 and method.encoder.embed_dim == 64
    assert method.predictor.head.out_features == 96
    before = {k: v.clone() for k, v in method.teacher.state_dict().items()}
    video, masks = first_batch(trainer)
    for _ in range(3):
        trainer.train_step(video, masks)
    assert all(torch.equal(before[k], v) for k, v in method.teacher.state_dict().items())
    assert all(p.grad is None and not p.requires_grad for p in method.teacher.parameters())
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in method.teacher.parameters()}
    method.train()
    assert not method.teacher.training and method.encoder.training


def test_student_refuses_a_teacher_with_other_tokens(tiny_synth, tmp_path):
    from videojepa import create_model, save_encoder

    save_encoder(create_model("vit_pico", patch_size=16), tmp_path / "t.safetensors")
    with pytest.raises(UserError, match="patch"):
        make_trainer(
            "demo/salt_student",
            tiny_synth,
            tmp_path / "run",
            **{"method.teacher.checkpoint": tmp_path / "t.safetensors"},
        )


def _run_cli(config_path, run_dir):
    return subprocess.Popen(
        [sys.executable, "-m", "videojepa", "pretrain", str(config_path), f"run.dir={run_dir}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_then_resume_matches_an_uninterrupted_run(tiny_synth, tmp_path):
    from videojepa.config import save_config

    n = 8
    cfg = load_config(
        "demo/vjepa",
        tiny_overrides(
            tiny_synth,
            tmp_path / "unused",
            **{"train.steps": 2 * n, "train.checkpoint_every": n, "model.name": "vit_nano", "predictor.depth": 2},
        ),
    )
    save_config(cfg, tmp_path / "cfg.yaml")
    straight = _run_cli(tmp_path / "cfg.yaml", tmp_path / "a")
    assert straight.wait(timeout=300) == 0, straight.stderr.read()

    killed = _run_cli(tmp_path / "cfg.yaml", tmp_path / "b")
    target = tmp_path / "b" / "checkpoints" / f"step_{n:08d}"
    deadline = time.time() + 300
    while not target.exists() and time.time() < deadline and killed.poll() is None:
        time.sleep(0.02)
    assert killed.poll() is None, "the run ended before it could be killed"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert ckpt.list_checkpoints(tmp_path / "b")[-1].name == target.name  # killed before the end
    resumed = _run_cli(tmp_path / "cfg.yaml", tmp_path / "b")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()

    def losses(run):
        return [r["loss"] for r in read_metrics(run, kind="step")]

    assert len(losses(tmp_path / "a")) == 2 * n and losses(tmp_path / "a") == losses(tmp_path / "b")
    a, b = ckpt.load_latest(tmp_path / "a"), ckpt.load_latest(tmp_path / "b")
    assert a["step"] == b["step"] == 2 * n
    assert all(torch.equal(a["method"][k], b["method"][k]) for k in a["method"])


def _crash_while_saving(run_dir):
    """Child process: write checkpoint 1, then die (SIGKILL) halfway through writing checkpoint 2."""
    import torch.distributed.checkpoint as dcp

    ckpt.save_checkpoint(run_dir, 1, {"step": 1, "w": torch.ones(1000)}, keep=3)

    def torn_save(state, checkpoint_id):
        (Path(checkpoint_id) / "__0_0.distcp").write_bytes(b"half a checkpoint")
        os.kill(os.getpid(), signal.SIGKILL)

    dcp.save = torn_save
    ckpt.save_checkpoint(run_dir, 2, {"step": 2, "w": torch.zeros(1000)}, keep=3)


def test_a_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path):
    child = multiprocessing.get_context("spawn").Process(target=_crash_while_saving, args=(tmp_path,))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000001"]
    assert ckpt.load_latest(tmp_path)["step"] == 1 and torch.equal(ckpt.load_latest(tmp_path)["w"], torch.ones(1000))


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    ckpt.save_checkpoint(tmp_path, 1, {"step": 1, "w": torch.ones(10)}, keep=3)
    ckpt.save_checkpoint(tmp_path, 2, {"step": 2, "w": torch.zeros(10)}, keep=3)
    shard = ckpt.list_checkpoints(tmp_path)[-1] / "__0_0.distcp"
    shard.write_bytes(shard.read_bytes()[:20])
    with caplog.at_level(logging.WARNING, logger="videojepa.train"):
        assert ckpt.load_latest(tmp_path)["step"] == 1
    assert "unreadable checkpoint" in caplog.text


def test_keep_last_k_checkpoints(tmp_path):
    for step in range(1, 6):
        ckpt.save_checkpoint(tmp_path, step, {"step": step}, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000004", "step_00000005"]


def test_resume_refuses_a_conflicting_config(tiny_synth, tmp_path):
    make_trainer("demo/vjepa", tiny_synth, tmp_path, **{"train.steps": 2}).fit()
    with pytest.raises(UserError, match="train.lr"):
        make_trainer("demo/vjepa", tiny_synth, tmp_path, **{"train.steps": 2, "train.lr": 1e-2}).fit()


def test_a_constant_encoder_triggers_the_collapse_warning(tiny_synth, tmp_path):
    trainer = make_trainer(
        "demo/vjepa", tiny_synth, tmp_path, **{"train.steps": 5, "train.lr": 1e-9, "train.start_lr": 1e-9}
    )
    with torch.no_grad():
        for encoder in (trainer.method.encoder, trainer.method.target_encoder):
            encoder.norm.weight.zero_()  # every token's features = the norm's bias: a collapsed encoder
            encoder.norm.bias.uniform_(-1, 1)
    trainer.fit()
    assert "collapse suspected" in (tmp_path / "train.log").read_text()
    last = read_metrics(tmp_path, kind="log")[-1]
    assert last["collapse_warning"] and last["feature_std"] < 1e-3 and last["feature_rank"] < 2


def test_a_method_without_std_metrics_is_watched_on_the_held_out_signals(tiny_synth, tmp_path):
    trainer = make_trainer(
        "demo/vjepa", tiny_synth, tmp_path, **{"train.steps": 5, "train.lr": 1e-9, "train.start_lr": 1e-9}
    )
    forward = trainer.method.forward

    def no_std_metrics(v, m):  # a method that reports neither target_std nor pred_std
        loss, metrics = forward(v, m)
        return loss, {k: x for k, x in metrics.items() if not k.endswith("_std")}

    trainer.method.forward = no_std_metrics
    trainer.model = trainer.method
    with torch.no_grad():
        for encoder in (trainer.method.encoder, trainer.method.target_encoder):
            encoder.norm.weight.zero_()
            encoder.norm.bias.uniform_(-1, 1)
    trainer.fit()
    log = (tmp_path / "train.log").read_text()
    assert "the method reports no target_std; watching the held-out feature std and rank only" in log
    warning = next(line for line in log.splitlines() if "collapse suspected" in line)
    assert "collapse suspected: feature std 0.0000 (threshold 0.02), effective rank 1.00" in warning
    last = read_metrics(tmp_path, kind="log")[-1]
    assert last["collapse_warning"] and "target_std" not in last


def test_collapse_watch_has_no_stand_ins_for_missing_or_nan_signals(caplog):
    from videojepa.train.monitors import CollapseWatch

    healthy = {"feature_std": 0.5, "feature_rank": 10.0}
    assert CollapseWatch(0.02, 2.0).check(1, {**healthy, "target_std": 0.4}) is False  # negative control
    assert CollapseWatch(0.02, 2.0).check(1, {**healthy, "target_std": 0.001}) is True
    assert CollapseWatch(0.02, 2.0).check(1, {**healthy, "feature_std": float("nan")}) is True
    assert CollapseWatch(0.02, 2.0).check(1, {**healthy, "feature_rank": float("nan")}) is True
    with pytest.raises(ValueError, match="collapse watch: no feature_std or feature_rank measured"):
        CollapseWatch(0.02, 2.0).check(1, {"target_std": 0.001})
    watch = CollapseWatch(0.02, 2.0)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="videojepa.train"):
        assert watch.check(1, healthy) is False and watch.check(2, healthy) is False
    assert caplog.text.count("reports no target_std") == 1


def test_healthy_training_raises_no_collapse_warning(tiny_synth, tmp_path):
    make_trainer("demo/vjepa", tiny_synth, tmp_path, **{"train.steps": 5}).fit()
    log = (tmp_path / "train.log").read_text()
    assert "collapse" not in log and "step 5 loss" in log


def test_a_nan_loss_is_skipped_and_counted_then_too_many_abort(tiny_synth, tmp_path, caplog):
    trainer = make_trainer("demo/salt_teacher", tiny_synth, tmp_path, **{"train.max_nonfinite_steps": 3})
    video, masks = first_batch(trainer)
    forward = trainer.method.forward
    poison = {"on": True}

    def poisoned(v, m):
        loss, metrics = forward(v, m)
        return (loss * float("nan"), metrics) if poison["on"] else (loss, metrics)

    trainer.method.forward = poisoned
    trainer.model = trainer.method
    before = [p.clone() for p in trainer.params]
    with caplog.at_level(logging.WARNING, logger="videojepa.train"):
        record = trainer.train_step(video, masks)
    assert record["skipped"] == 1 and "step skipped" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.params))  # no update happened
    poison["on"] = False
    assert trainer.train_step(video, masks)["skipped"] == 1 and trainer.nonfinite_in_row == 0
    poison["on"] = True
    trainer.train_step(video, masks)
    trainer.train_step(video, masks)
    with pytest.raises(TrainingError, match="3 non-finite steps in a row"):
        trainer.train_step(video, masks)


def test_fp16_overflow_steps_skip_the_ema_are_counted_and_abort(tiny_synth, tmp_path, caplog):
    trainer = make_trainer(
        "demo/vjepa", tiny_synth, tmp_path, **{"train.precision": "fp16", "train.max_nonfinite_steps": 3}
    )
    video, masks = first_batch(trainer)
    method = trainer.method
    weights = lambda: [p.detach().clone() for p in (*method.encoder.parameters(), *method.target_encoder.parameters())]  # noqa: E731
    overflow = {"on": False}
    for p in method.encoder.parameters():  # an overflowing backward: inf gradients, finite loss
        p.register_hook(lambda g: torch.full_like(g, float("inf")) if overflow["on"] else g)

    def step(expect_applied: bool):
        before, scale = weights(), trainer.scaler.get_scale()
        record = trainer.train_step(video, masks)
        unchanged = [torch.equal(a, b) for a, b in zip(before, weights())]
        if expect_applied:  # negative control: the online encoder moved and the EMA pulled the target along
            assert not any(unchanged)
        else:  # no optimiser step, no EMA update, and the scaler halved its scale
            assert all(unchanged) and trainer.scaler.get_scale() == scale / 2
        return record

    assert step(True)["skipped"] == 0
    overflow["on"] = True
    with caplog.at_level(logging.WARNING, logger="videojepa.train"):
        assert step(False)["skipped"] == 1 and trainer.nonfinite_in_row == 1
        assert step(False)["skipped"] == 2 and trainer.nonfinite_in_row == 2
    assert "fp16 gradient overflow" in caplog.text and "step skipped (2 in a row, 2 in all)" in caplog.text
    overflow["on"] = False
    assert step(True)["skipped"] == 2 and trainer.nonfinite_in_row == 0
    overflow["on"] = True
    step(False), step(False)
    with pytest.raises(TrainingError, match=r"^3 non-finite steps in a row \(train.max_nonfinite_steps=3\)"):
        trainer.train_step(video, masks)
    assert trainer.skipped == 5


def test_gradient_accumulation_matches_one_big_batch(tiny_synth, tmp_path):
    # without method.feature_reg, whose batch statistics are each micro-batch's: the loss is a per-sample mean
    a = make_trainer("demo/salt_teacher", tiny_synth, tmp_path / "a", **{"method.feature_reg": 0.0})
    b = make_trainer(
        "demo/salt_teacher", tiny_synth, tmp_path / "b", **{"train.accum_steps": 2, "method.feature_reg": 0.0}
    )
    b.method.load_state_dict(a.method.state_dict())
    video, masks = first_batch(a)
    a.train_step(video, masks)
    b.train_step(video, masks)
    assert b.params[0].grad is not None
    for p, q in zip(a.params, b.params):  # the accumulated gradient equals the full batch's
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-7)


def test_pretrain_cli_reports_missing_data(cli, tmp_path):
    code, _, err = cli("pretrain", "demo/vjepa", f"run.dir={tmp_path}", "data.train=null")
    assert code == 2 and "data.train is not set" in err


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "data.val=nowhere/val.csv",
            "data.val: data source not found: nowhere/val.csv. Pretraining uses data.val only for "
            "the health monitors' held-out batch (feature std and RankMe on 8 clips); give an existing CSV/folder, or "
            "data.val=null to measure them on un-augmented training clips",
        ),
        (
            "data.train=nowhere/train.csv",
            "data.train: data source not found: nowhere/train.csv (a CSV/list file, a folder of videos or one video)",
        ),
        (
            "data.num_views=3",
            "data.num_views: 3 is an evaluation setting: pretraining reads one clip and one view per "
            "video (allowed: 1); set it in a probe config instead",
        ),
        (
            "data.num_clips=2",
            "data.num_clips: 2 is an evaluation setting: pretraining reads one clip and one view per "
            "video (allowed: 1); set it in a probe config instead",
        ),
    ],
)
def test_pretrain_refuses_bad_data_settings_before_any_work(cli, tiny_synth, tmp_path, override, message):
    run = tmp_path / "run"
    code, out, err = cli("pretrain", "demo/vjepa", *tiny_overrides(tiny_synth, run), override)
    assert (code, out, err) == (2, "", f"videojepa pretrain: error: {message}\n")
    assert not run.exists()  # nothing written


def test_pretraining_without_data_val_logs_its_held_out_fallback(tiny_synth, tmp_path):
    make_trainer(
        "demo/vjepa", tiny_synth, tmp_path, **{"train.steps": 1, "train.log_every": 1, "data.val": "null"}
    ).fit()
    log = (tmp_path / "train.log").read_text()
    assert "data.val is not set: the health monitors' held-out batch is 8 un-augmented training clips" in log
    assert "feature std" in log  # the monitors ran on that batch
    make_trainer("demo/vjepa", tiny_synth, tmp_path / "with_val", **{"train.steps": 1}).fit()  # negative control
    assert "data.val is not set" not in (tmp_path / "with_val" / "train.log").read_text()


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(small)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("a small tmpfs cannot be mounted here")
    try:
        ckpt.save_checkpoint(small, 1, {"step": 1, "w": torch.ones(1000)}, keep=3)  # 4 kB
        with pytest.raises(ckpt.CheckpointWriteError) as failure:
            ckpt.save_checkpoint(small, 2, {"step": 2, "w": torch.ones(1_000_000)}, keep=3)  # 4 MB
        message = str(failure.value)
        assert "\n" not in message and message.startswith(
            f"cannot write checkpoint {small}/checkpoints/step_00000002: "
            "No space left on device; it needs about 3.8 MiB here"
        )
        assert message.endswith("the previous checkpoint is kept")
        assert [p.name for p in (small / "checkpoints").iterdir()] == ["step_00000001"]  # no half-written one
        assert torch.equal(ckpt.load_latest(small)["w"], torch.ones(1000))
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_model_init_starts_from_a_folders_encoder_and_predictor(tiny_synth, tmp_path):
    """A converted V-JEPA 2 folder (encoder + predictor) continues pretraining: the online encoder, the EMA
    target and the predictor start from its weights; another architecture is refused naming model.init."""
    from videojepa.config import load_config as load
    from videojepa.encoder_io import save_encoder, save_predictor

    source = make_trainer("demo/vjepa", tiny_synth, tmp_path / "source", **{"train.steps": 2})
    source.fit()
    folder = tmp_path / "folder"
    save_encoder(source.method.target_encoder, folder / "encoder.safetensors")
    save_predictor(source.method.predictor, folder / "predictor.safetensors")
    started = make_trainer("demo/vjepa", tiny_synth, tmp_path / "run", **{"model.init": folder})
    for name in ("encoder", "target_encoder"):
        own = getattr(started.method, name).state_dict()
        assert all(torch.equal(v, own[k]) for k, v in source.method.target_encoder.state_dict().items()), name
    assert all(
        torch.equal(v, started.method.predictor.state_dict()[k])
        for k, v in source.method.predictor.state_dict().items()
    )
    fresh = make_trainer("demo/vjepa", tiny_synth, tmp_path / "fresh")  # the negative control: not these weights
    assert not torch.equal(fresh.method.encoder.patch_embed.weight, started.method.encoder.patch_embed.weight)
    with pytest.raises(
        UserError,
        match=r"model\.init: the encoder in .* does not match the config's \(.*embed_dim: 64 "
        r"there, 96 here",
    ):
        Trainer(
            load(
                "demo/vjepa",
                tiny_overrides(tiny_synth, tmp_path / "other", **{"model.init": folder, "model.name": "vit_nano"}),
            )
        )
