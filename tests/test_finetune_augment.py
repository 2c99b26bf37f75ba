"""Fine-tuning's augmentations and parameter groups, each against its definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videojepa.data.erasing import random_erase
from videojepa.data.randaugment import OPS, apply_plan, draw_plan
from videojepa.finetune.layer_decay import layer_decay_groups
from videojepa.finetune.mixup import MixSettings, mix_batch, smooth_one_hot


# ------------------------------------------------------------------ layer-wise lr decay
def test_layer_decay_gives_each_block_its_documented_rate():
    from videojepa.finetune.head import ClassifierHead
    from videojepa.models.registry import create_model

    depth, decay = 4, 0.8
    encoder, head = create_model("vit_nano", patch_size=8), ClassifierHead("attentive", 96, 5, 3)
    named = [(f"encoder.{n}", p) for n, p in encoder.named_parameters()] + [
        (f"head.{n}", p) for n, p in head.named_parameters()
    ]
    groups = layer_decay_groups(named, depth, decay)
    rate = {name: g["lr_scale"] for g in groups for name in g["names"]}
    assert sorted(rate) == sorted(n for n, _ in named)  # every parameter in exactly one group
    assert rate["encoder.patch_embed.weight"] == pytest.approx(decay ** (depth + 1))  # embedding lowest
    for i in range(depth):
        assert rate[f"encoder.blocks.{i}.attn.qkv.weight"] == pytest.approx(decay ** (depth - i))
        assert rate[f"encoder.blocks.{i}.norm1.bias"] == pytest.approx(decay ** (depth - i))
    assert rate["encoder.norm.weight"] == rate["head.probe.head.1.weight"] == rate["head.probe.query"] == 1.0
    assert min(rate.values()) == rate["encoder.patch_embed.weight"] and max(rate.values()) == 1.0
    # weight decay: none on 1-D tensors
    no_wd = {name for g in groups if not g["apply_wd"] for name in g["names"]}
    assert "encoder.blocks.0.attn.qkv.bias" in no_wd and "encoder.blocks.0.attn.qkv.weight" not in no_wd
    assert all(g["weight_decay"] == 0.0 for g in groups if not g["apply_wd"])


def test_scheduled_lr_is_scaled_per_group():
    from videojepa.optim.adamw import set_hyperparameters

    a, b = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW(
        [{"params": [a], "lr_scale": 0.25, "apply_wd": True}, {"params": [b], "apply_wd": False, "weight_decay": 0.0}]
    )
    set_hyperparameters(opt, 0.4, 0.05)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.4]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]


# ------------------------------------------------------------------ mixup / cutmix / smoothing
def test_label_smoothing_targets():
    t = smooth_one_hot(torch.tensor([2, 0]), 4, 0.1)
    assert torch.allclose(t.sum(1), torch.ones(2))
    assert t[0, 2] == pytest.approx(0.9 + 0.025) and t[0, 0] == pytest.approx(0.025)
    assert torch.equal(smooth_one_hot(torch.tensor([1]), 3, 0.0), torch.tensor([[0.0, 1.0, 0.0]]))


def batch(n=4, classes=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 4, 8, 8, generator=g), smooth_one_hot(torch.arange(n) % classes, classes, 0.1)


def test_mixup_mixes_pixels_and_labels_with_the_drawn_lambda():
    video, target = batch()
    out, mixed, info = mix_batch(video, target, MixSettings(mixup=0.8, cutmix=0.0), np.random.default_rng(3))
    expected = np.random.default_rng(3)
    expected.random()  # the mix_prob draw
    lam = expected.beta(0.8, 0.8)
    assert info["mode"] == "mixup" and info["lam"] == pytest.approx(lam)
    assert torch.allclose(out, lam * video + (1 - lam) * video.flip(0))
    assert torch.allclose(mixed, lam * target + (1 - lam) * target.flip(0))
    assert torch.allclose(mixed.sum(1), torch.ones(4))
    # negative control: another lambda does not reproduce the batch
    assert not torch.allclose(out, 0.5 * video + 0.5 * video.flip(0))


def test_cutmix_pastes_one_box_in_every_frame_and_lambda_is_its_uncovered_area():
    video, target = batch()
    for seed in range(20):
        out, mixed, info = mix_batch(video, target, MixSettings(mixup=0.0, cutmix=1.0), np.random.default_rng(seed))
        top, bottom, left, right = info["box"]
        inside = torch.zeros(8, 8, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        assert torch.equal(out[..., inside], video.flip(0)[..., inside])  # every clip, channel and frame
        assert torch.equal(out[..., ~inside], video[..., ~inside])
        lam = 1 - inside.sum().item() / 64
        assert info["lam"] == pytest.approx(lam)
        assert torch.allclose(mixed, lam * target + (1 - lam) * target.flip(0))


def test_switch_prob_chooses_cutmix_or_mixup_and_mix_prob_zero_leaves_the_batch():
    video, target = batch()
    modes = [mix_batch(video, target, MixSettings(), np.random.default_rng(s))[2]["mode"] for s in range(200)]
    assert 60 < modes.count("cutmix") < 140 and modes.count("cutmix") + modes.count("mixup") == 200
    out, mixed, info = mix_batch(video, target, MixSettings(mix_prob=0.0), np.random.default_rng(0))
    assert info["mode"] == "none" and out is video and mixed is target


# ------------------------------------------------------------------ RandAugment
def clip_with_frames(frames=4, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, frames, size, size, generator=g)


@pytest.mark.parametrize("op", list(OPS))
def test_every_op_treats_each_frame_as_the_same_image_op(op):
    clip = clip_with_frames()
    plan = [(op, 7.3, -1.0)]
    whole = apply_plan(clip, plan)
    frame_by_frame = torch.cat([apply_plan(clip[:, t : t + 1], plan) for t in range(clip.shape[1])], dim=1)
    assert whole.shape == clip.shape and whole.min() >= 0 and whole.max() <= 1
    assert torch.allclose(whole, frame_by_frame, atol=1e-6)
    assert not torch.allclose(whole, clip)  # and every op does something at this magnitude


def test_randaugment_applies_the_same_ops_and_magnitudes_to_every_frame():
    still = clip_with_frames(frames=1).expand(3, 6, 16, 16).contiguous()  # six identical frames
    changed = 0
    for seed in range(10):
        plan = draw_plan(np.random.default_rng(seed), num_ops=4, magnitude=7, magnitude_std=0.5)
        out = apply_plan(still, plan)
        assert all(torch.equal(out[:, 0], out[:, t]) for t in range(6))  # frames stay identical
        changed += not torch.equal(out, still)
        assert all(name in OPS and 0 <= m <= 10 and s in (-1.0, 1.0) for name, m, s in plan)
    assert changed >= 8
    # negative control: a plan drawn per frame breaks the clip apart
    per_frame = torch.cat(
        [apply_plan(still[:, t : t + 1], draw_plan(np.random.default_rng(100 + t))) for t in range(6)], dim=1
    )
    assert not all(torch.equal(per_frame[:, 0], per_frame[:, t]) for t in range(6))


def test_draw_plan_keeps_each_op_with_probability_one_half():
    lengths = [len(draw_plan(np.random.default_rng(s), num_ops=4)) for s in range(400)]
    assert 1.8 < np.mean(lengths) < 2.2
    magnitudes = [m for s in range(200) for _, m, _ in draw_plan(np.random.default_rng(s), 4, 7.0, 0.5)]
    assert abs(np.mean(magnitudes) - 7.0) < 0.1 and 0.4 < np.std(magnitudes) < 0.6


# ------------------------------------------------------------------ random erasing
def test_random_erasing_erases_one_box_shared_by_all_frames():
    clip = torch.full((3, 4, 32, 32), 7.0)
    erased_any = 0
    for seed in range(40):
        out = random_erase(clip, 1.0, np.random.default_rng(seed))
        changed = out != 7.0
        if not changed.any():
            continue
        erased_any += 1
        box = changed[0, 0]
        assert all(torch.equal(changed[c, t], box) for c in range(3) for t in range(4))  # same box everywhere
        rows, cols = box.any(1).nonzero(), box.any(0).nonzero()
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert box.sum() == h * w and 0.02 * 1024 * 0.5 <= h * w <= 1024 / 3 * 1.2
        assert not torch.equal(out[0, 0][box], out[0, 1][box])  # fresh noise per frame
    assert erased_any >= 35
    assert torch.equal(random_erase(clip, 0.0, np.random.default_rng(0)), clip)
    share = np.mean([not torch.equal(random_erase(clip, 0.25, np.random.default_rng(s)), clip) for s in range(400)])
    assert abs(share - 0.25) < 0.06
