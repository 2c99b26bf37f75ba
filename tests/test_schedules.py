"""Learning-rate, weight-decay and EMA-momentum schedules: against values computed by hand, against the official
V-JEPA / V-JEPA 2 schedulers (golden fixture: their values, from running their code), and as the trainer
applies them. The configs have a real warmup (start_lr != lr) and a real weight-decay schedule
(0.04 -> 0.4), so a switched-off warmup or weight-decay schedule fails.

Index convention: our schedules are functions of the number of optimiser steps already taken (`step`, 0 at the
first step). The official schedulers' `step()` returns the k-th value at its k-th call, and the official loop
calls it BEFORE each iteration, so its iteration s uses its value k = s + 1; its EMA momentum generator yields
value i at iteration i. As functions, ours(s) equals the official value k = s (checked below): the official lr
and weight decay run one step ahead of ours.
"""

from __future__ import annotations

import math

import pytest
import torch
from golden import numbers

from videojepa.config.schema import TrainConfig
from videojepa.optim.schedules import learning_rate, linear, weight_decay

# V-JEPA's recipe shape at 100 iterations (10 "epochs" of 10): 20 warmup steps, schedules over 1.25 x 100
RECIPE = dict(
    steps=100,
    schedule_scale=1.25,
    warmup_steps=20,
    start_lr=2e-4,
    lr=6.25e-4,
    final_lr=1e-6,
    weight_decay=0.04,
    final_weight_decay=0.4,
)
EMA = (0.998, 1.0)
# Pure float64 arithmetic written in another order: measured max abs difference 5.4e-20 (lr; values ~6e-4) and 0
# (wd, EMA), by hand and against the official values. 1e-15 leaves room for another libm; every control below
# misses by more than 1e-6.
TOL = 1e-15


def by_hand_lr(s: int, c: dict) -> float:
    """Linear warmup start_lr -> lr over warmup_steps, then a half cosine lr -> final_lr over the rest of
    steps * schedule_scale; training stops at `steps`, before the cosine reaches its floor."""
    w, horizon = c["warmup_steps"], c["steps"] * c["schedule_scale"]
    if s < w:
        return c["start_lr"] + s / w * (c["lr"] - c["start_lr"])
    progress = (s - w) / (horizon - w)
    return c["final_lr"] + (c["lr"] - c["final_lr"]) * (1 + math.cos(math.pi * progress)) / 2


def by_hand_wd(s: int, c: dict) -> float:
    progress = s / (c["steps"] * c["schedule_scale"])
    return (
        c["final_weight_decay"] + (c["weight_decay"] - c["final_weight_decay"]) * (1 + math.cos(math.pi * progress)) / 2
    )


def by_hand_ema(s: int, c: dict) -> float:
    return EMA[0] + (EMA[1] - EMA[0]) * s / (c["steps"] * c["schedule_scale"])


def test_every_schedule_equals_its_values_by_hand_with_warmup_and_a_moving_weight_decay():
    tc = TrainConfig(**RECIPE)
    steps = range(RECIPE["steps"] + 1)
    ours = {
        "lr": [learning_rate(tc, s) for s in steps],
        "wd": [weight_decay(tc, s) for s in steps],
        "ema": [linear(*EMA, tc, s) for s in steps],
    }
    hand = {
        "lr": [by_hand_lr(s, RECIPE) for s in steps],
        "wd": [by_hand_wd(s, RECIPE) for s in steps],
        "ema": [by_hand_ema(s, RECIPE) for s in steps],
    }
    for name in ours:
        assert max(abs(a - b) for a, b in zip(ours[name], hand[name])) < TOL, name
    # the landmarks, in words
    assert ours["lr"][0] == RECIPE["start_lr"] and ours["lr"][10] == pytest.approx((2e-4 + 6.25e-4) / 2, abs=1e-18)
    assert ours["lr"][20] == RECIPE["lr"] and max(ours["lr"]) == RECIPE["lr"]
    assert ours["wd"][0] == pytest.approx(0.04, abs=1e-16) and ours["wd"][100] == pytest.approx(
        0.22 - 0.18 * math.cos(math.pi * 0.8), abs=1e-15
    )
    # schedule_scale truncation: the run stops at 80% of the cosine, so the lr is still well above its floor
    assert ours["lr"][100] == pytest.approx(1e-6 + (6.25e-4 - 1e-6) * (1 + math.cos(math.pi * 80 / 105)) / 2, abs=1e-18)
    assert ours["lr"][100] > 50 * RECIPE["final_lr"] and ours["ema"][100] == pytest.approx(0.9996, abs=1e-15)
    # negative controls: the bugs this catches
    no_warmup = TrainConfig(**{**RECIPE, "warmup_steps": 0})
    no_scale = TrainConfig(**{**RECIPE, "schedule_scale": 1.0})
    assert abs(learning_rate(no_warmup, 5) - by_hand_lr(5, RECIPE)) > 1e-5
    assert abs(learning_rate(no_scale, 100) - by_hand_lr(100, RECIPE)) > 1e-5
    assert abs(weight_decay(no_scale, 50) - by_hand_wd(50, RECIPE)) > 1e-2
    assert abs(RECIPE["weight_decay"] - by_hand_wd(50, RECIPE)) > 1e-2  # a constant weight decay is caught


def test_schedules_equal_the_official_schedulers():
    official = numbers("official_schedules.json")
    c = official["config"]
    tc = TrainConfig(
        steps=c["iterations"],
        schedule_scale=c["ipe_scale"],
        warmup_steps=c["warmup_steps"],
        start_lr=c["start_lr"],
        lr=c["lr"],
        final_lr=c["final_lr"],
        weight_decay=c["weight_decay"],
        final_weight_decay=c["final_weight_decay"],
    )
    assert c["T_max"] == tc.steps * tc.schedule_scale  # the official horizon int(ipe_scale * epochs * ipe)
    steps = range(1, tc.steps + 1)  # official value k (its k-th call) against ours at step k
    for family in ("vjepa1", "vjepa2"):
        values = official[family]
        lr = max(abs(learning_rate(tc, k) - values["lr_warmup_cosine"][k - 1]) for k in steps)
        wd = max(abs(weight_decay(tc, k) - values["wd_cosine"][k - 1]) for k in steps)
        ema = max(abs(linear(*c["ema"], tc, i) - values["ema_linear"][i]) for i in range(tc.steps))
        assert max(lr, wd, ema) < TOL, (family, lr, wd, ema)
        # the official values are the by-hand ones too (the fixture is what the docstring says)
        assert values["lr_warmup_cosine"][9] == pytest.approx(by_hand_lr(10, RECIPE), abs=1e-18)
        # a control: our values one step later than the official index miss
        assert max(abs(learning_rate(tc, k - 1) - values["lr_warmup_cosine"][k - 1]) for k in steps) > 1e-6


def test_wsd_schedule_equals_the_official_v_jepa_2_scheduler():
    """V-JEPA 2's warmup -> constant -> linear cooldown (its src/utils/schedulers.py WSDSchedule, and
    LinearDecaySchedule for the cooldown run)."""
    official = numbers("official_schedules.json")
    w = official["wsd_config"]
    tc = TrainConfig(
        steps=w["T_max"],
        schedule_scale=1.0,
        warmup_steps=w["warmup_steps"],
        start_lr=w["start_lr"],
        lr=w["lr"],
        final_lr=w["final_lr"],
        lr_schedule="wsd",
        cooldown_steps=w["anneal_steps"],
    )
    values = official["vjepa2"]["lr_wsd"]
    diffs = [abs(learning_rate(tc, k) - values[k - 1]) for k in range(1, tc.steps + 1)]
    assert max(diffs) < TOL, max(diffs)
    assert values[40] == w["lr"] and values[-1] < w["lr"] / 3  # constant in the middle, cooled down at the end
    # V-JEPA 2's cooldown phase (its is_anneal run: LinearDecaySchedule lr -> final_lr over the whole phase) is
    # wsd with no warmup and the whole run as cooldown
    cooldown = TrainConfig(**{**tc.model_dump(), "warmup_steps": 0, "cooldown_steps": w["T_max"]})
    values = official["vjepa2"]["lr_linear_decay"]
    assert max(abs(learning_rate(cooldown, k) - values[k - 1]) for k in range(1, tc.steps + 1)) < TOL


def test_the_trainer_applies_the_schedules_and_the_ema_momentum(tiny_synth, tmp_path, one_thread):
    """A trainer's optimiser gets the by-hand lr and weight decay at every step (weight decay only on the groups
    that decay), its logs say so, and the EMA target moves by the by-hand momentum."""
    from conftest import tiny_overrides

    from videojepa.config import load_config
    from videojepa.masks import MaskCollator, build_mask_generators
    from videojepa.train.trainer import Trainer

    c = {**RECIPE, "steps": 8, "warmup_steps": 3, "schedule_scale": 1.25}
    overrides = {f"train.{k}": v for k, v in c.items()}
    cfg = load_config("demo/vjepa", tiny_overrides(tiny_synth, tmp_path, **overrides, **{"method.ema": list(EMA)}))
    trainer = Trainer(cfg)
    collator = MaskCollator(build_mask_generators(cfg), seed=0)
    generator = torch.Generator().manual_seed(0)
    decays = [g for g in trainer.optimizer.param_groups if g["apply_wd"]]
    assert decays and len(decays) < len(trainer.optimizer.param_groups)
    for step in range(c["steps"]):
        target = [p.detach().clone() for p in trainer.method.target_encoder.parameters()]
        record = trainer.train_step(torch.randn(4, 3, 8, 32, 32, generator=generator), collator.sample(4, step))
        lr, wd, m = by_hand_lr(step, c), by_hand_wd(step, c), by_hand_ema(step, c)
        assert record["lr"] == pytest.approx(lr, rel=1e-12) and record["wd"] == pytest.approx(wd, rel=1e-12)
        assert record["momentum"] == pytest.approx(m, rel=1e-12)
        for group in trainer.optimizer.param_groups:
            assert group["lr"] == pytest.approx(lr, rel=1e-12)
            assert group["weight_decay"] == (pytest.approx(wd, rel=1e-12) if group["apply_wd"] else 0.0)
        online = list(trainer.method.encoder.parameters())
        for before, after, source in zip(target, trainer.method.target_encoder.parameters(), online):
            assert torch.allclose(after, m * before + (1 - m) * source.detach(), rtol=0, atol=1e-6)
