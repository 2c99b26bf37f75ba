"""uint8 clips from the workers, flipped and normalised on the training device, equal the float pipeline."""

import pytest
import torch
from conftest import tiny_overrides
from torch.utils.data import default_collate

from videojepa.config import load_config
from videojepa.data import DataConfig, build_dataset
from videojepa.data.transforms import normalization_constants, normalize_clips
from videojepa.train.trainer import Trainer


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("clips_views", [(1, 1), (2, 3)])
def test_uint8_items_normalised_later_equal_float_items(tiny_synth, train, clips_views, one_thread):
    clips, views = clips_views
    cfg = DataConfig(
        crop_size=32,
        frames_per_clip=4,
        frame_step=2,
        num_clips=clips,
        num_views=views,
        mean=(0.4, 0.5, 0.6),
        std=(0.2, 0.25, 0.3),
    )
    source = str(tiny_synth / "motion" / "train.csv")
    floats, uint8s = build_dataset(source, cfg, train), build_dataset(source, cfg, train, uint8=True)
    keys = [(i, 7, 0) for i in range(6)]
    expected = default_collate([floats[k] for k in keys])
    batch = default_collate([uint8s[k] for k in keys])
    assert batch["video"].dtype == torch.uint8 and batch["video"].nbytes * 4 == expected["video"].nbytes
    assert torch.equal(batch["index"], expected["index"]) and torch.equal(batch["label"], expected["label"])
    shift, scale = normalization_constants(cfg.mean, cfg.std)
    got = normalize_clips(batch["video"], batch["flip"], shift, scale)
    assert torch.equal(got, expected["video"])  # bit for bit: the same code, after the same uint8 crops
    if train:  # negative control: some clips are flipped, and forgetting the flips is caught
        assert batch["flip"].any() and not batch["flip"].all()
        unflipped = normalize_clips(batch["video"], torch.zeros_like(batch["flip"]), shift, scale)
        assert not torch.equal(unflipped, expected["video"])
    else:
        assert not batch["flip"].any()


def test_trainer_moves_uint8_batches_and_normalises_them(tiny_synth, tmp_path, one_thread):
    trainer = Trainer(load_config("demo/vjepa", tiny_overrides(tiny_synth, tmp_path)))
    trainer.build_data()
    batch = next(iter(trainer.loader))
    assert batch["video"].dtype == torch.uint8
    video = trainer.video_to_device(batch)
    cfg = trainer.cfg.data
    reference = build_dataset(cfg.train, cfg, train=True)
    order = trainer.loader.sampler.order(0)[: len(batch["index"])]
    expected = torch.stack([reference[(i, trainer.cfg.run.seed, 0)]["video"] for i in order])
    assert video.dtype == torch.float32 and torch.equal(video, expected)
