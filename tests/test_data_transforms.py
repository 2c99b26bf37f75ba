"""Plain-torch clip augmentation: shapes, shared crops, flips, views, normalisation."""

import numpy as np
import pytest
import torch

from videojepa.data.transforms import ClipTransform, random_resized_crop_box, resize, view_offsets

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def test_random_resized_crop_box_respects_scale_and_ratio():
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, h, w = random_resized_crop_box(60, 80, (0.3, 1.0), (0.75, 1.35), rng)
        assert top >= 0 and top + h <= 60 and left >= 0 and left + w <= 80
        assert 0.3 * 4800 * 0.9 <= h * w <= 4800
        assert 0.75 * 0.9 <= w / h <= 1.35 * 1.1


def test_train_views_share_crop_and_flip_across_frames():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.integers(0, 256, (1, 40, 50, 3), dtype=np.uint8))
    frames = image.expand(8, -1, -1, -1).contiguous()
    t = ClipTransform(24, MEAN, STD, train=True, num_views=2)
    out = t(frames, rng)
    assert out.shape == (2, 3, 8, 24, 24) and out.dtype == torch.float32
    assert torch.equal(out[:, :, :1].expand_as(out), out)  # every frame cropped the same way
    assert not torch.equal(out[0], out[1])  # views are independent


def test_flip_happens_about_half_the_time():
    frames = torch.arange(16, dtype=torch.uint8).repeat(16, 1)[None, :, :, None].expand(2, 16, 16, 3).contiguous()
    t = ClipTransform(16, MEAN, STD, train=True, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    rng = np.random.default_rng(0)
    flips = 0
    for _ in range(200):
        out = t(frames, rng)[0, 0, 0]
        increasing = bool(out[0, -1] > out[0, 0])
        flips += not increasing
    assert 70 < flips < 130


def test_normalisation_is_exact():
    frames = torch.full((3, 8, 8, 3), 200, dtype=torch.uint8)
    out = ClipTransform(8, MEAN, STD, train=False, eval_resize_ratio=1.0)(frames)[0]
    for c in range(3):
        assert torch.allclose(out[c], torch.tensor((200 / 255 - MEAN[c]) / STD[c]), atol=1e-5)


def test_eval_three_views_span_the_long_side():
    rng = np.random.default_rng(1)
    frames = torch.from_numpy(rng.integers(0, 256, (4, 32, 64, 3), dtype=np.uint8))
    t = ClipTransform(32, MEAN, STD, train=False, num_views=3, eval_resize_ratio=1.0)
    out = t(frames)
    assert out.shape == (3, 3, 4, 32, 32)
    for view, left in zip(out, view_offsets(64, 32, 3)):
        assert torch.allclose(view, t.normalize(frames[:, :, left : left + 32]))
    assert view_offsets(64, 32, 3) == [0, 16, 32] and view_offsets(64, 32, 1) == [16]
    tall = ClipTransform(32, MEAN, STD, train=False, num_views=3, eval_resize_ratio=1.0)(frames.transpose(1, 2))
    assert tall.shape == (3, 3, 4, 32, 32)


def test_eval_resize_short_side_then_centre_crop():
    frames = torch.zeros(2, 100, 150, 3, dtype=torch.uint8)
    t = ClipTransform(64, MEAN, STD, train=False, eval_resize_ratio=256 / 224)
    assert t(frames).shape == (1, 3, 2, 64, 64)


def test_resize_is_antialiased_bilinear_on_uint8():
    frames = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    frames[:, :, ::2] = 255  # 1-pixel stripes average to grey when halved
    small = resize(frames, (32, 32))
    assert small.dtype == torch.uint8 and small.shape == (1, 32, 32, 3)
    inner = small[:, :, 1:-1].float()  # (border columns see a one-sided window)
    assert (inner - 127.5).abs().max() <= 1


def test_rejects_wrong_input():
    t = ClipTransform(8, MEAN, STD, train=True)
    with pytest.raises(ValueError, match="uint8 frames"):
        t(torch.zeros(2, 8, 8, 3))
    with pytest.raises(ValueError, match="random generator"):
        t(torch.zeros(2, 8, 8, 3, dtype=torch.uint8))
