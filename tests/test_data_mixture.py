"""Weighted mixtures of sources: the documented per-epoch composition, sampling proportions, exact resume."""

import signal

import numpy as np
import pytest
import torch
from conftest import tiny_overrides

from videojepa.config import load_config
from videojepa.data import DataConfig, build_dataset, build_loader
from videojepa.data.mixture import MixtureDataset, MixtureSampler, composition
from videojepa.errors import UserError
from videojepa.train.trainer import Trainer


def test_composition_is_proportional_and_adds_up():
    assert composition(40, [3, 1]) == [30, 10]
    assert composition(10, [1, 1, 1]) == [4, 3, 3]  # largest remainder, ties to the earlier source
    assert composition(7, [0.5, 0.25, 0.25]) == [3, 2, 2]  # 3.5, 1.75, 1.75: the largest remainders win
    assert sum(composition(1001, [0.3, 0.7, 2.1])) == 1001


def test_sampler_draws_the_configured_proportion_and_every_file_before_repeats():
    sizes, weights = [10, 30], [3, 1]  # source 0 is small but weighted 3:1, so it repeats within an epoch
    sampler = MixtureSampler(sizes, weights, seed=5)
    assert len(sampler) == 40
    for epoch in range(4):
        order = np.asarray(sampler.order(epoch))
        from_small = order < 10
        assert from_small.sum() == 30 and (~from_small).sum() == 10  # exactly 3:1 in every epoch
        # shuffled together: a prefix of the epoch holds the mix within sampling error (binomial, 3 sigma)
        assert abs(from_small[:20].mean() - 0.75) <= 3 * np.sqrt(0.75 * 0.25 / 20)
        # the large source's stream: 10 new files per epoch, all 30 seen over 3 epochs before any repeat
    seen = np.concatenate([np.asarray(sampler.order(e)) for e in range(3)])
    assert sorted(seen[seen >= 10].tolist()) == list(range(10, 40))
    small = np.asarray(sampler.order(0))
    counts = np.bincount(small[small < 10], minlength=10)
    assert counts.tolist() == [3] * 10  # 30 draws of 10 files: 3 full passes
    # a long run: the fraction over many epochs is the weight's, and the same seed gives the same order
    assert sampler.order(7) == MixtureSampler(sizes, weights, seed=5).order(7)
    assert sampler.order(7) != MixtureSampler(sizes, weights, seed=6).order(7)
    # negative control: equal weights give the sizes' proportion, not 3:1
    plain = np.asarray(MixtureSampler(sizes, [1, 3], seed=5).order(0))
    assert (plain < 10).sum() == 10


@pytest.fixture(scope="module")
def two_sources(tiny_synth):
    return [
        {"path": str(tiny_synth / "motion" / "train.csv"), "weight": 3},
        {"path": str(tiny_synth / "appearance" / "val.csv"), "weight": 1},
    ]


def test_mixture_loader_resumes_exactly(two_sources, one_thread):
    cfg = DataConfig(train=two_sources, crop_size=32, frames_per_clip=4, frame_step=2, num_workers=0)
    dataset = build_dataset(cfg.train, cfg, train=True, uint8=True)
    assert isinstance(dataset, MixtureDataset) and len(dataset) == 16
    reference = build_loader(dataset, 3, cfg, seed=1)
    batches = [b for _, b in zip(range(7), reference)]  # crosses an epoch boundary (5 batches per epoch)
    assert {s for b in batches for s in b["source"].tolist()} == {0, 1}
    loader = build_loader(dataset, 3, cfg, seed=1)
    first = [b for _, b in zip(range(3), loader)]
    state = loader.state_dict()
    resumed = build_loader(build_dataset(cfg.train, cfg, train=True, uint8=True), 3, cfg, seed=1)
    resumed.load_state_dict(state)
    rest = [b for _, b in zip(range(4), resumed)]
    for a, b in zip(batches, first + rest):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["video"], b["video"])
    # negative control: a state saved with other weights is refused
    other = build_loader(build_dataset([{**two_sources[0], "weight": 1}, two_sources[1]], cfg, True), 3, cfg, seed=1)
    with pytest.raises(UserError, match="source weights"):
        other.load_state_dict(state)


def test_mixture_config_and_training(two_sources, tiny_synth, tmp_path):
    with pytest.raises(UserError, match=r"data.train: source 1: weight: input should be greater than 0"):
        load_config("demo/vjepa", [("data.train", ["a.csv", {"path": "b.csv", "weight": 0}])])
    with pytest.raises(UserError, match=r"data.train: source 0: share: extra inputs are not permitted"):
        load_config("demo/vjepa", [("data.train", [{"path": "a.csv", "share": 1}])])
    cfg = load_config(
        "demo/vjepa",
        [
            *tiny_overrides(tiny_synth, tmp_path, **{"train.steps": 2}),
            f"data.train=[{{path: {two_sources[0]['path']}, weight: 3}}, {{path: {two_sources[1]['path']}}}]",
        ],
    )
    assert [s.weight for s in cfg.data.train] == [3.0, 1.0]
    # fit() installs a SIGTERM handler and leaves it: restore the default, or later fork pools in this process
    # could not be terminated
    handler = signal.getsignal(signal.SIGTERM)
    try:
        Trainer(cfg).fit()
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert (tmp_path / "encoder.safetensors").exists()
