"""DataLoader construction: per-worker seeding, persistent workers, sharding, exact resume.

`ResumableSampler` orders a dataset by one permutation per (seed, epoch), padded like torch's
`DistributedSampler`, and yields keys `(index, seed, epoch)`, so that each item's augmentation is a function
of the key (see `datasets`). The ranks split each GLOBAL batch (the next `world_size x batch_size` indices of
the epoch's order) into contiguous parts, so the samples a run consumes depend on the global batch only,
not on how many ranks read it. `ResumableLoader` is a DataLoader that counts the batches it hands out: its
`state_dict()` holds the epoch and the samples all ranks consumed in it, and `load_state_dict()` makes the
next iteration continue with the next unseen sample, on the same number of ranks or another one that
divides the global batch (a resized run sees every sample of the epoch once, no repeat, no gap). Batches
after a resume are bit-identical to those of an uninterrupted run, whatever the number of workers.
Iterating the loader again after a full epoch starts the next epoch.

Workers are persistent (started once, reused every epoch); each seeds `random`, `numpy` and `torch`
from (seed, rank, worker id), so randomness inside a custom `collate_fn` is reproducible from a fresh
start (a mid-epoch resume restores the data, not those generators). A worker that raises surfaces its
error in the main process, with the workers shut down at once; one that hangs fails after
`data.worker_timeout`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from videojepa.data.config import DataConfig
from videojepa.data.datasets import TooManyBadFilesError
from videojepa.errors import UserError


class ResumableSampler(Sampler):
    """Shuffled (or ordered) keys for one rank's share of a dataset, resumable mid-epoch."""

    def __init__(
        self,
        size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        batch_size: int | None = None,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.batch_size = batch_size or 1  # per rank: the global batch is world_size x batch_size
        self.epoch, self.position = 0, 0
        if drop_last and size % world_size:
            self.num_samples = size // world_size
        else:
            self.num_samples = -(-size // world_size)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its beginning."""
        self.epoch, self.position = epoch, 0

    def epoch_indices(self, epoch: int) -> list[int]:
        """All ranks' dataset indices for `epoch`, before padding and striding (a mixture composes them)."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + epoch)
            return torch.randperm(self.size, generator=g).tolist()
        return list(range(self.size))

    def order(self, epoch: int) -> list[int]:
        """This rank's dataset indices for `epoch`: its contiguous part of each global batch."""
        indices = self.epoch_indices(epoch)
        total = self.num_samples * self.world_size
        if self.drop_last:
            indices = indices[:total]
        else:
            padding = total - len(indices)
            indices += (indices * -(-padding // max(len(indices), 1)))[:padding]
        mine = []
        for start in range(0, total, self.world_size * self.batch_size):
            chunk = indices[start : start + self.world_size * self.batch_size]
            part = len(chunk) // self.world_size  # a last, shorter global batch is split evenly too
            mine += chunk[self.rank * part : (self.rank + 1) * part]
        return mine

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        keys = [(i, self.seed, self.epoch) for i in self.order(self.epoch)[self.position :]]
        return iter(keys)

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "consumed": self.position * self.world_size,
            "size": self.size,
            "seed": self.seed,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict) -> None:
        for key in ("size", "seed"):
            if state[key] != getattr(self, key):
                raise UserError(
                    f"cannot resume the data order: it was saved with {key}={state[key]}, "
                    f"this run has {key}={getattr(self, key)}"
                )
        self.epoch = int(state["epoch"])
        if state["world_size"] == self.world_size:
            self.position = int(state["position"])
            return
        consumed = int(state.get("consumed", state["position"] * state["world_size"]))
        if consumed % (self.world_size * self.batch_size) and consumed < self.num_samples * self.world_size:
            raise UserError(
                f"cannot resume the data order on {self.world_size} ranks: the run stopped after "
                f"{consumed} samples of its epoch, not a whole number of global batches of "
                f"{self.world_size} x {self.batch_size}"
            )
        self.position = min(consumed // self.world_size, self.num_samples)


class ResumableLoader(DataLoader):
    """A DataLoader over a `ResumableSampler` whose position can be saved and restored; see module docstring."""

    def __iter__(self):
        sampler = self.sampler
        left = sampler.num_samples - sampler.position
        if left <= 0 or (self.drop_last and left < self.batch_size):  # stopped right at the end of an epoch
            sampler.set_epoch(sampler.epoch + 1)
        try:
            for batch in super().__iter__():
                sampler.position = min(sampler.position + self.batch_size, sampler.num_samples)
                yield batch
        except GeneratorExit:  # the consumer stopped early: keep the workers for the next iteration
            raise
        except BaseException as err:
            self._stop_workers()
            if isinstance(err, UserError):
                raise _clean_worker_error(err) from None
            raise
        sampler.set_epoch(sampler.epoch + 1)

    def _stop_workers(self) -> None:
        """Shut the worker processes down now: left to garbage collection after an error, it takes seconds."""
        iterator, self._iterator = getattr(self, "_iterator", None), None
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


def _clean_worker_error(err: UserError) -> UserError:
    """A UserError re-raised by the DataLoader carries the worker's traceback: keep its own message."""
    text = str(err)
    if "Traceback" not in text:
        return err
    last = text.strip().splitlines()[-1]
    message = re.sub(r"^[\w.]+(Error|Exception): ", "", last)
    return TooManyBadFilesError(message) if isinstance(err, TooManyBadFilesError) else UserError(message)


def _seed_worker(worker_id: int) -> None:
    seed = get_worker_info().seed  # = loader base seed + worker id; torch is already seeded with it
    random.seed(seed)
    np.random.seed(seed % 2**32)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    data_cfg: DataConfig,
    seed: int,
    collate_fn: Callable | None = None,
    distributed: bool = False,
    drop_last: bool = True,
    shuffle: bool | None = None,
    rank: int | None = None,
    world_size: int | None = None,
) -> ResumableLoader:
    """A resumable DataLoader over `dataset`.

    `shuffle` defaults to `dataset.train` (True when the dataset has no such attribute). With `distributed`,
    rank and world size come from the initialised `torch.distributed` process group unless given.
    """
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    if seed < 0:
        raise UserError(f"the data seed must be a non-negative integer, got {seed}")
    if distributed and (rank is None or world_size is None):
        if not (dist.is_available() and dist.is_initialized()):
            raise UserError("distributed data loading needs torch.distributed initialised (launch with torchrun)")
        rank, world_size = dist.get_rank(), dist.get_world_size()
    rank, world_size = (rank or 0, world_size or 1) if distributed else (0, 1)
    if shuffle is None:
        shuffle = getattr(dataset, "train", True)
    make_sampler = getattr(dataset, "make_sampler", None)  # a mixture of sources brings its own composition
    if make_sampler is not None:
        sampler = make_sampler(
            shuffle=shuffle,
            seed=seed,
            rank=rank,
            world_size=world_size,
            drop_last=drop_last and distributed,
            batch_size=batch_size,
        )
    else:
        sampler = ResumableSampler(
            len(dataset),
            shuffle=shuffle,
            seed=seed,
            rank=rank,
            world_size=world_size,
            drop_last=drop_last and distributed,
            batch_size=batch_size,
        )
    workers = data_cfg.num_workers
    generator = torch.Generator()
    generator.manual_seed(seed * 1_000_003 + rank)
    return ResumableLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        worker_init_fn=_seed_worker if workers else None,
        generator=generator,
        persistent_workers=workers > 0,
        timeout=data_cfg.worker_timeout if workers else 0,
    )
