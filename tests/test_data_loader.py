"""Loader: exact resume, worker independence, DistributedSampler compatibility, seeding, custom collate."""

import random

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, default_collate

from videojepa.data import DataConfig, ResumableSampler, build_dataset, build_loader
from videojepa.data.synth import write_index_video
from videojepa.errors import UserError

CFG = dict(crop_size=24, frames_per_clip=4, frame_step=2, num_workers=0)


@pytest.fixture(scope="module")
def video_list(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    for i in range(10):
        write_index_video(str(root / f"{i}.mp4"), 20 + i, 32, 40)
    (root / "list.csv").write_text("".join(f"{i}.mp4 {i % 3}\n" for i in range(10)))
    return str(root / "list.csv")


def take(loader, n):
    """n batches, running over epoch boundaries like a step-based training loop."""
    out = []
    while len(out) < n:
        for batch in loader:
            out.append(batch)
            if len(out) == n:
                break
    return out


def same(a, b):
    return all(torch.equal(x["video"], y["video"]) and torch.equal(x["index"], y["index"]) for x, y in zip(a, b))


def test_resume_continues_the_exact_same_batches(video_list):
    cfg = DataConfig(**CFG)
    full = take(build_loader(build_dataset(video_list, cfg, True), 3, cfg, seed=7), 8)  # 3 batches per epoch

    workers = DataConfig(**{**CFG, "num_workers": 2})
    first = build_loader(build_dataset(video_list, workers, True), 3, workers, seed=7)
    head = take(first, 4)
    state = first.state_dict()
    assert state["epoch"] == 1 and state["position"] == 3
    again = build_loader(build_dataset(video_list, cfg, True), 3, cfg, seed=7)
    again.load_state_dict(state)
    tail = take(again, 4)
    assert same(head + tail, full)  # bit-identical, with or without workers
    assert not torch.equal(full[0]["index"], full[3]["index"])  # epochs are reshuffled


def test_stopping_at_an_epoch_end_does_not_yield_an_empty_epoch(video_list):
    cfg = DataConfig(**CFG)
    loader = build_loader(build_dataset(video_list, cfg, True), 3, cfg, seed=0)
    take(loader, 3)  # the last full batch of epoch 0, loop broken before it noticed the end
    assert len(list(loader)) == 3 and loader.epoch == 2


def test_evaluation_order_and_seed_mismatch(video_list):
    cfg = DataConfig(**CFG)
    loader = build_loader(build_dataset(video_list, cfg, False), 4, cfg, seed=0, drop_last=False)
    batches = list(loader)
    assert torch.cat([b["index"] for b in batches]).tolist() == list(range(10))
    other = build_loader(build_dataset(video_list, cfg, False), 4, cfg, seed=1)
    with pytest.raises(UserError, match="saved with seed=0, this run has seed=1"):
        other.load_state_dict(loader.state_dict())


@pytest.mark.parametrize("drop_last", [False, True])
def test_sharding_matches_torch_distributed_sampler(drop_last):
    data = list(range(11))
    for rank in range(3):
        ours = ResumableSampler(11, shuffle=True, seed=5, rank=rank, world_size=3, drop_last=drop_last)
        theirs = DistributedSampler(data, num_replicas=3, rank=rank, shuffle=True, seed=5, drop_last=drop_last)
        for epoch in range(2):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            keys = list(ours)
            assert [k[0] for k in keys] == list(theirs) and len(keys) == len(theirs) == len(ours)
            assert all(k[1:] == (5, epoch) for k in keys)


def test_distributed_loader_uses_the_process_group(video_list, tmp_path):
    cfg = DataConfig(**CFG)
    ds = build_dataset(video_list, cfg, True)
    with pytest.raises(UserError, match="torch.distributed initialised"):
        build_loader(ds, 2, cfg, seed=0, distributed=True)
    shards = [build_loader(ds, 2, cfg, seed=0, distributed=True, rank=r, world_size=2).sampler.order(0) for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == list(range(10))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        loader = build_loader(ds, 2, cfg, seed=0, distributed=True)
        assert (loader.sampler.rank, loader.sampler.world_size) == (0, 1) and len(list(loader)) == 5
    finally:
        dist.destroy_process_group()


def test_custom_collate_is_used(video_list):
    cfg = DataConfig(**CFG)
    seen = []

    def collate(items):
        seen.append(len(items))
        batch = default_collate(items)
        batch["extra"] = torch.ones(len(items))
        return batch

    batch = next(iter(build_loader(build_dataset(video_list, cfg, True), 4, cfg, seed=0, collate_fn=collate)))
    assert seen == [4] and batch["extra"].shape == (4,) and batch["video"].shape == (4, 3, 4, 24, 24)


class RandomDraws(torch.utils.data.Dataset):
    """Returns draws from the global generators of whichever process loads it."""

    def __len__(self):
        return 8

    def __getitem__(self, key):
        info = torch.utils.data.get_worker_info()
        return torch.tensor(
            [np.random.randint(1 << 30), random.randrange(1 << 30), torch.randint(1 << 30, ()).item(), info.id]
        )


def test_workers_are_seeded_per_worker_and_per_seed():
    cfg = DataConfig(num_workers=2)

    def draws(seed):
        return torch.cat(list(build_loader(RandomDraws(), 2, cfg, seed=seed, shuffle=False)))

    a, b, c = draws(0), draws(0), draws(1)
    assert torch.equal(a, b) and not torch.equal(a[:, :3], c[:, :3])
    w0, w1 = a[a[:, 3] == 0, :3], a[a[:, 3] == 1, :3]
    assert len(w0) and len(w1) and not set(w0.flatten().tolist()) & set(w1.flatten().tolist())


@pytest.mark.parametrize("before,after", [(2, 1), (1, 2), (2, 4), (4, 2)])
def test_a_resized_run_reads_each_sample_of_the_epoch_once(before, after):
    """Global batch 4: the ranks split each global batch, so the samples consumed do not depend on how many ranks
    read them; resuming on another number of ranks continues the epoch's order with no repeat and no gap."""
    from videojepa.data.loader import ResumableSampler

    size, global_batch, steps_before = 30, 4, 3

    def samplers(world):
        return [
            ResumableSampler(size, seed=7, rank=r, world_size=world, drop_last=True, batch_size=global_batch // world)
            for r in range(world)
        ]

    def read(ranks, steps):
        """`steps` global batches: each rank takes its next per-rank batch."""
        batch = global_batch // len(ranks)
        seen = []
        for _ in range(steps):
            for s in ranks:
                keys = list(iter(s))[:batch]
                s.position += batch
                seen += [k[0] for k in keys]
        return seen

    first = samplers(before)
    seen = read(first, steps_before)
    state = first[0].state_dict()
    resumed = samplers(after)
    for s in resumed:
        s.load_state_dict(state)
    seen += read(resumed, size // global_batch - steps_before)
    epoch = ResumableSampler(size, seed=7).epoch_indices(0)
    assert seen == epoch[: size // global_batch * global_batch]  # the epoch's order, each sample once
    assert len(set(seen)) == len(seen)
