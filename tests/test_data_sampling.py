"""Clip sampling is frame-exact: the frames that reach the model are the frames the sampler chose."""

import numpy as np
import pytest
import torch

from videojepa.data import DataConfig, build_dataset
from videojepa.data.sampling import ShortVideoError, clip_offsets, clip_step, sample_clips
from videojepa.data.synth import decode_index, write_index_video

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def shown_indices(video: torch.Tensor) -> np.ndarray:
    """Frame indices displayed by a normalised index-pattern clip (C×T×H×W or N×C×T×H×W)."""
    x = video * STD[0] + MEAN[0]  # back to 0..1
    x = x.movedim(-4, -1)  # …×T×H×W×C
    return decode_index(x.numpy() * 255)


def eval_cfg(**kw) -> DataConfig:
    """Evaluation transform that keeps every pixel: the crop is the whole (square) frame."""
    base = dict(crop_size=32, eval_resize_ratio=1.0, mean=MEAN, std=STD, num_workers=0)
    return DataConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def video_list(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    write_index_video(str(root / "a.mp4"), 120, 32, 32, fps=30, gop=12)
    write_index_video(str(root / "b.mp4"), 90, 32, 32, fps=24, gop=10)
    (root / "list.csv").write_text("a.mp4 0\nb.mp4 1\n")
    return str(root / "list.csv")


def test_clip_offsets_for_steps_and_fps():
    assert clip_offsets(4, clip_step(30, 3, None)).tolist() == [0, 3, 6, 9]
    assert clip_offsets(5, clip_step(30, 3, 12)).tolist() == [0, 3, 5, 8, 10]  # 30 → 12 fps: step 2.5, round up
    assert clip_offsets(4, clip_step(10, 1, 20)).tolist() == [0, 1, 1, 2]  # upsampling repeats frames
    with pytest.raises(ValueError, match="frame rate is unknown"):
        clip_step(None, 1, 12)


def test_uniform_segments_are_centred_and_disjoint():
    clips = sample_clips(100, 4, 2.0, num_clips=3)  # span 7, segments of 33
    assert clips.tolist() == [[13, 15, 17, 19], [46, 48, 50, 52], [79, 81, 83, 85]]


def test_random_starts_stay_inside_their_segment():
    rng = np.random.default_rng(0)
    starts = np.array([sample_clips(100, 4, 2.0, 3, rng)[:, 0] for _ in range(500)])
    for k in range(3):
        assert starts[:, k].min() == 33 * k and starts[:, k].max() == 33 * k + 26  # every start reachable
    assert len(np.unique(starts[:, 0])) == 27


def test_overlapping_clips_when_segments_are_too_short():
    clips = sample_clips(20, 8, 2.0, num_clips=2)  # span 15 > segment 10
    assert clips[:, -1].max() < 20 and clips[0, 0] < clips[1, 0]
    rng = np.random.default_rng(0)
    for _ in range(200):
        c = sample_clips(20, 8, 2.0, 2, rng)
        assert c.min() >= 0 and c.max() < 20


def test_start_and_end_frame_window():
    clips = sample_clips(1000, 4, 1.0, 1, start=100, end=110)
    assert clips.tolist() == [[103, 104, 105, 106]]


def test_short_video_policies():
    assert sample_clips(5, 8, 1.0, 1, short_video="repeat_last").tolist() == [[0, 1, 2, 3, 4, 4, 4, 4]]
    assert sample_clips(5, 8, 1.0, 1, short_video="loop").tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]]
    with pytest.raises(ShortVideoError, match="too short: 5 frames, a clip spans 8"):
        sample_clips(5, 8, 1.0, 1, short_video="skip")


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("sampling", [dict(frame_step=3), dict(fps=12.0), dict(frame_step=2, num_clips=3)])
def test_dataset_returns_exactly_the_sampled_frames(video_list, train, sampling):
    """Whatever the sampling, each clip shows consecutive indices of the chosen spacing, inside its segment."""
    cfg = eval_cfg(
        frames_per_clip=6,
        horizontal_flip=False,
        random_resize_scale=(1.0, 1.0),
        random_resize_aspect_ratio=(1.0, 1.0),
        **sampling,
    )
    ds = build_dataset(video_list, cfg, train=train)
    for index, (num_frames, fps) in enumerate([(120, 30), (90, 24)]):
        seen = set()
        for seed in range(6 if train else 2):
            video = ds[(index, seed, 0)]["video"]
            clips = shown_indices(video if video.dim() == 5 else video[None])
            step = clip_step(fps, cfg.frame_step, cfg.fps)
            expected = clip_offsets(6, step)
            k = cfg.num_clips
            segment = num_frames // k
            for c, clip in enumerate(clips):
                if cfg.fps:  # consecutive frames of the video resampled to fps: round(j * step) for j, j+1, ...
                    first = int(round(clip[0] / step))
                    assert clip.tolist() == np.floor((first + np.arange(6)) * step + 0.5).astype(int).tolist()
                    times = clip / fps - clip[0] / fps  # 1/fps apart in time, to within half a frame
                    assert np.abs(times - np.arange(6) / cfg.fps).max() <= 0.5 / fps + 1e-9
                else:
                    assert (clip - clip[0]).tolist() == expected.tolist()
                assert c * segment <= clip[0] and clip[-1] < (c + 1) * segment
            seen.add(tuple(clips[:, 0]))
        if train:
            assert len(seen) > 1  # random starts
        else:
            assert len(seen) == 1  # uniform: the same clips every time
            if cfg.fps:  # centred among the resampled frames
                grid = int(np.ceil((num_frames - 0.5) / step))
                assert clips[0, 0] == np.floor((grid - 6) // 2 * step + 0.5)
            else:
                assert clips[0, 0] == (segment - (expected[-1] + 1)) // 2  # centred in the first segment


def test_num_clips_and_views_layout(video_list):
    cfg = eval_cfg(frames_per_clip=4, frame_step=2, num_clips=2, num_views=3)
    video = build_dataset(video_list, cfg, train=False)[0]["video"]
    assert video.shape == (6, 3, 4, 32, 32)  # clip-major: clip0 view0..2, clip1 view0..2
    shown = shown_indices(video)
    assert (shown[:3] == shown[0]).all() and (shown[3:] == shown[3]).all()
    assert shown[3, 0] > shown[0, -1]


def test_grid_sampling_is_the_resampled_video():
    """With fps, clips are consecutive frames of the resampled video; sampling that video at step 1 (a prepared
    copy) draws the same clips for the same generator, mapped back through round(j * step)."""
    step = 30 / 12
    for seed in range(20):
        original = sample_clips(120, 6, step, 2, np.random.default_rng(seed), grid=True)
        resampled = sample_clips(48, 6, 1.0, 2, np.random.default_rng(seed), grid=True)  # 48 grid frames in 120
        assert original.tolist() == np.floor(resampled * step + 0.5).astype(int).tolist()
    # a frame range maps to the grid frames inside it
    clips = sample_clips(120, 4, step, 1, None, start=11, end=40, grid=True)
    assert clips.min() >= 11 and clips.max() < 40
    # negative control: plain (non-grid) sampling may start off the grid, so it is not the resampled video
    starts = {int(sample_clips(120, 6, step, 1, np.random.default_rng(s))[0, 0]) for s in range(40)}
    assert any(s not in set(np.floor(np.arange(48) * step + 0.5).astype(int).tolist()) for s in starts)
