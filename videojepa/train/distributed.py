"""torchrun integration: one process per device, gloo on CPU, nccl on CUDA. No custom launcher."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    grouped: bool = False  # a process group exists (any torchrun launch, even of one process: FSDP2 needs one)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def use_tf32() -> None:
    """fp32 matmuls and convolutions on CUDA run on the tensor cores in TF32 (10-bit mantissa inputs, fp32
    accumulation): what `train.precision=fp32` gets on a GPU. CPU matmuls are left as they are."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def init_distributed() -> DistInfo:
    """Read torchrun's environment; a plain `python` launch is a world of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        use_tf32()
    else:
        device = torch.device("cpu")
    if (world > 1 or "TORCHELASTIC_RUN_ID" in os.environ) and not dist.is_initialized():
        if device.type == "cuda":  # bound to its GPU: NCCL connects eagerly and never guesses the device
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return DistInfo(rank, world, local, device, dist.is_initialized())


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= info.world_size
    return value


def shutdown_distributed(wait_for_all: bool = True) -> None:
    """Destroy the process group: its communication threads, left to the interpreter's exit, can abort it.

    `wait_for_all`: first wait until every rank is here (after a run that ended normally), so that no rank
    closes its connections while another still receives the last collective's data; not after an error,
    where the other ranks may never arrive."""
    if dist.is_available() and dist.is_initialized():
        if wait_for_all:
            dist.barrier()
        dist.destroy_process_group()


def end_worker() -> None:
    """Leave a torchrun worker whose work is done and saved without the interpreter's teardown.

    A worker that finished normally can still abort at exit ("terminate called without an active exception",
    exit -6; seen on CPU with gloo and FSDP2, about one run in three under load): a communication thread is
    destroyed by C++ static destructors after Python has finished. torchrun would report the whole run failed.
    Outside torchrun this does nothing.
    """
    if "TORCHELASTIC_RUN_ID" in os.environ:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
