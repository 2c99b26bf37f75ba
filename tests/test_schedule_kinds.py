"""The lr schedule kinds and the lr batch-scaling convention, against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from videojepa.config import load_config
from videojepa.errors import ConfigError
from videojepa.optim.schedules import learning_rate

WSD = [
    "train.lr_schedule=wsd",
    "train.steps=100",
    "train.schedule_scale=1.25",  # horizon 125
    "train.warmup_steps=10",
    "train.cooldown_steps=25",  # cooldown from step 100 of the horizon: never reached by 100 steps
    "train.start_lr=1e-4",
    "train.lr=5e-4",
    "train.final_lr=1e-6",
]


def test_wsd_warms_up_holds_then_cools_down_linearly():
    cfg = load_config("demo/vjepa", WSD).train
    by_hand = {0: 1e-4, 5: 1e-4 + 0.5 * 4e-4, 10: 5e-4, 60: 5e-4, 99: 5e-4}
    assert {s: learning_rate(cfg, s) for s in by_hand} == pytest.approx(by_hand, rel=1e-12)
    cool = load_config("demo/vjepa", [*WSD, "train.cooldown_steps=50"]).train  # from step 75 of 125
    by_hand = {74: 5e-4, 75: 5e-4, 80: 5e-4 + (1e-6 - 5e-4) * 5 / 50, 99: 5e-4 + (1e-6 - 5e-4) * 24 / 50}
    assert {s: learning_rate(cool, s) for s in by_hand} == pytest.approx(by_hand, rel=1e-12)
    assert learning_rate(cool, 125) == pytest.approx(1e-6) and learning_rate(cool, 500) == pytest.approx(1e-6)


def test_vjepa2_cooldown_preset_follows_the_official_linear_decay():
    # LinearDecaySchedule(ref 5.25e-4, final 1e-6, T_max = 1.25 x 12000): lr = ref + (final - ref) * s / T_max
    cfg = load_config("vjepa2/vitl16_cooldown").train
    for step in (0, 1000, 6000, 11_999):
        assert learning_rate(cfg, step) == pytest.approx(5.25e-4 + (1e-6 - 5.25e-4) * step / 15_000, rel=1e-12)


def test_cosine_is_unchanged_and_is_not_wsd():
    cosine = load_config("demo/vjepa", [w for w in WSD if "lr_schedule" not in w and "cooldown" not in w]).train
    step = 60
    by_hand = 1e-6 + 0.5 * (5e-4 - 1e-6) * (1 + math.cos(math.pi * (step - 10) / (125 - 10)))
    assert learning_rate(cosine, step) == pytest.approx(by_hand, rel=1e-12)
    assert learning_rate(load_config("demo/vjepa", WSD).train, step) != pytest.approx(by_hand, rel=1e-3)


def test_lr_base_batch_scales_every_learning_rate_by_the_batch():
    base = load_config("demo/vjepa", [*WSD, "train.batch_size=8"]).train
    scaled = load_config("demo/vjepa", [*WSD, "train.batch_size=8", "train.lr_base_batch=256"]).train
    for step in (0, 5, 50, 120):
        assert learning_rate(scaled, step) == pytest.approx(learning_rate(base, step) * 8 / 256, rel=1e-12)


def test_the_trainer_applies_the_scaled_lr_to_the_optimiser(tmp_path, tiny_synth):
    # the logged and applied lr is the scaled one: 3e-4 x 4 / 256
    from conftest import tiny_overrides

    from videojepa.train.trainer import Trainer

    overrides = tiny_overrides(
        tiny_synth, tmp_path / "run", **{"train.steps": 1, "train.warmup_steps": 0, "train.lr_base_batch": 256}
    )
    cfg = load_config("demo/vjepa", overrides + ["train.lr=3e-4"])
    trainer = Trainer(cfg)
    record = trainer.fit()
    assert record["lr"] == pytest.approx(3e-4 * 4 / 256, rel=1e-9)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx([3e-4 * 4 / 256] * 2, rel=1e-9)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.cooldown_steps=5"], "belongs to train.lr_schedule=wsd"),
        ([*WSD, "train.cooldown_steps=120"], r"warmup \(10\) and cooldown together exceed"),
    ],
)
def test_schedule_settings_that_cannot_hold_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("demo/vjepa", overrides)


def test_zero_init_mask_tokens_starts_them_at_zero():
    from videojepa.methods.base import build_head

    torch.manual_seed(0)
    zero = build_head(load_config("demo/vjepa", ["predictor.zero_init_mask_tokens=true"]), 192, 192)
    torch.manual_seed(0)
    normal = build_head(load_config("demo/vjepa"), 192, 192)
    assert torch.count_nonzero(zero.mask_tokens) == 0
    assert 0.005 < normal.mask_tokens.std() < 0.05  # N(0, 0.02), truncated
