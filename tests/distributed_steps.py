"""Three training steps of each method on fixed global batches, for tests/test_distributed.py.

    torchrun --nproc_per_node 2 tests/distributed_steps.py OUT   # each rank trains on its share of every batch
    torchrun --nproc_per_node 4 tests/distributed_steps.py OUT   # HSDP: 2 replicas of 2 shards, nothing else
    python tests/distributed_steps.py OUT                         # one process, the whole batch
    torchrun --nproc_per_node 2 tests/distributed_steps.py restore CONFIG OUT_FILE   # resume, write what loaded
    torchrun --nproc_per_node 2 tests/distributed_steps.py jobs JOB [JOB ...]   # several runs in one launch
        JOB: CONFIG (what `videojepa pretrain CONFIG` does: train, or resume its run), finetune=CONFIG (what
        `videojepa finetune CONFIG` does) or restore=CONFIG=OUT_FILE

Writes OUT/{name}.pt (the full method state after the steps, gathered on rank 0), OUT/{name}-records.json
(what train_step returned at each step: the logged loss, the gradient norm, whether it was clipped) and
OUT/samples-w{world}-r{rank}.json (the dataset indices each rank's loader drew for its first batches), where
name is {method}-{parallel}-w{world}, or {case}-... for the cases of CASES. One process also writes
{method}-half-w1, trained on the first half of each batch only: what a rank would end with if gradients were
never averaged (the negative control; its first logged loss is what rank 0 would log if losses were not).
"""

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import tiny_overrides  # noqa: E402

from videojepa.config import load_config  # noqa: E402
from videojepa.masks import MaskCollator, MaskIndices, build_mask_generators  # noqa: E402
from videojepa.train.trainer import Trainer  # noqa: E402

METHODS = {"vjepa": "demo/vjepa", "salt_student": "demo/salt_student", "salt_teacher": "demo/salt_teacher"}
GLOBAL_BATCH, STEPS = 4, 3
# V-JEPA with 2 micro-batches per step and a gradient clip below every step's gradient norm (~0.4), in fp32
# and in bf16
CLIP = 0.05
CASES = {
    "clipaccum": {"train.accum_steps": 2, "train.grad_clip": CLIP},
    "mixed": {"train.precision": "bf16", "train.accum_steps": 2, "train.grad_clip": CLIP},
}


def full_state(method) -> dict:
    """Every tensor of the method, whole: gathered from FSDP2 shards (a collective), copied otherwise."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return {k: v.clone() for k, v in get_model_state_dict(method, options=options).items()}


def train(
    method_name: str,
    parallel: str,
    data: str,
    out: Path,
    world: int,
    rank: int,
    half: bool = False,
    name: str = "",
    grouped_as: int = 1,
    **extra,
) -> None:
    """grouped_as=R (one process): order each batch so that its micro-batches hold what R ranks' micro-batches
    hold together (rank r takes rows r * B/R ...; its micro-batch i the i-th slice of those), as a batch
    statistic (method.feature_reg's) sees them; R ranks then equal one process exactly."""
    name = name or f"{method_name}-{'half' if half else parallel}-w{world}"
    overrides = tiny_overrides(
        data,
        out / f"run-{name}",
        **{
            "train.parallel": parallel,
            "train.batch_size": GLOBAL_BATCH,
            "train.steps": STEPS,
            "train.warmup_steps": 0,
            "train.lr": 1e-3,
            "train.grad_clip": "null",
            "method.teacher.checkpoint": "null",
            "method.teacher.model": "vit_pico",
            "method.ema": "[0.9, 0.9]",
            **extra,
        },
    )
    trainer = Trainer(load_config(METHODS[method_name], overrides))
    if world == 1 and not half and "train.precision" in extra:  # the weights before: bf16 compares updates
        torch.save(full_state(trainer.method), out / f"{name}-init.pt")
    per_rank = GLOBAL_BATCH // (2 if half else world)
    generator = torch.Generator().manual_seed(0)
    collator = MaskCollator(build_mask_generators(trainer.cfg), seed=0)
    records = []
    for step in range(STEPS):
        video = torch.randn(GLOBAL_BATCH, 3, 8, 32, 32, generator=generator)
        masks = collator.sample(GLOBAL_BATCH, step)
        if grouped_as > 1:
            order = torch.arange(GLOBAL_BATCH).view(grouped_as, trainer.train_cfg.accum_steps, -1).transpose(0, 1)
            order = order.flatten()
            video, masks = video[order], [MaskIndices(m.context[order], m.target[order]) for m in masks]
        part = slice(rank * per_rank, (rank + 1) * per_rank)
        record = trainer.train_step(video[part], [MaskIndices(m.context[part], m.target[part]) for m in masks])
        records.append({k: record[k] for k in ("loss", "grad_norm", "clipped")})
    state = full_state(trainer.method)
    if rank == 0:
        torch.save(state, out / f"{name}.pt")
        (out / f"{name}-records.json").write_text(json.dumps(records))


def ema_alignment_checks(data: str, out: Path) -> None:
    """check_ema_alignment on an FSDP2-wrapped V-JEPA: passes as wrapped, refuses an unsharded target or a
    target sharded on another dimension."""
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Shard

    from videojepa.errors import UserError
    from videojepa.models.registry import encoder_from_arch
    from videojepa.train.parallel import check_ema_alignment

    trainer = Trainer(load_config("demo/vjepa", tiny_overrides(data, out / "run-align", **{"train.parallel": "fsdp2"})))
    method, outcomes = trainer.method, {}
    other_dim = encoder_from_arch(method.encoder.arch)
    for block in other_dim.blocks:
        fully_shard(block, shard_placement_fn=lambda p: Shard(p.ndim - 1))
    fully_shard(other_dim, shard_placement_fn=lambda p: Shard(p.ndim - 1))
    for name, target in (
        ("as wrapped", method.target_encoder),
        ("unsharded", encoder_from_arch(method.encoder.arch)),
        ("sharded on another dimension", other_dim),
    ):
        try:
            check_ema_alignment(target, method.encoder, "target_encoder")
            outcomes[name] = "accepted"
        except UserError as err:
            outcomes[name] = str(err)
    if int(os.environ.get("RANK", "0")) == 0:
        (out / "ema-alignment.json").write_text(json.dumps(outcomes))


def loader_samples(data: str, out: Path, world: int, rank: int) -> None:
    trainer = Trainer(
        load_config("demo/vjepa", tiny_overrides(data, out / "run-samples", **{"train.batch_size": GLOBAL_BATCH}))
    )
    trainer.build_data()
    batches = iter(trainer.loader)
    drawn = [next(batches)["index"].tolist() for _ in range(2)]
    (out / f"samples-w{world}-r{rank}.json").write_text(json.dumps(drawn))


def restore(config: str, out: str | Path) -> None:
    """Resume the run of `config` on however many ranks this is and write, from rank 0, the whole state it
    restored (weights, optimiser state, step, data cursor) to `out`, without training."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    trainer = Trainer(load_config(config))
    trainer.prepare_run_dir()
    trainer.build_data()
    assert trainer.resume()
    method, optimizer = get_state_dict(
        trainer.method, trainer.optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )
    if trainer.dist.is_main:
        torch.save(
            {
                "method": method,
                "optimizer": optimizer["state"],
                "step": trainer.step,
                "loader": trainer.loader.state_dict(),
            },
            out,
        )


def jobs(specs: list[str]) -> None:
    """Several runs in one launch (each launch of two processes costs seconds of start-up on a small CPU): a
    config is trained as `videojepa pretrain CONFIG` trains it (or its run directory resumed); restore=C=OUT
    is `restore(C, OUT)`, finetune=C fine-tunes as `videojepa finetune C`."""
    from videojepa.train.distributed import end_worker, shutdown_distributed

    for spec in specs:
        if spec.startswith("restore="):
            restore(*spec.split("=")[1:])
        elif spec.startswith("finetune="):
            from videojepa.finetune import FinetuneConfig, run_finetune

            run_finetune(load_config(spec.split("=", 1)[1], schema=FinetuneConfig))
        else:  # with its online probe, as `videojepa pretrain` runs it
            from videojepa.eval.online import OnlineProbe

            cfg = load_config(spec)
            Trainer(cfg, hooks=[OnlineProbe(cfg)] if cfg.train.online_probe else []).fit()
    shutdown_distributed()
    end_worker()


def main() -> None:
    if sys.argv[1] == "restore":
        torch.set_num_threads(1)
        return restore(sys.argv[2], Path(sys.argv[3]))
    if sys.argv[1] == "jobs":
        torch.set_num_threads(1)
        return jobs(sys.argv[2:])
    out, data = Path(sys.argv[1]), sys.argv[2]
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    torch.set_num_threads(1)
    if world == 4:  # HSDP: 2 replicas (gradients all-reduced) of 2 shards (FSDP2 within each)
        train("vjepa", "fsdp2", data, out, world, rank, name="vjepa-hsdp2x2-w4", **{"train.replicas": 2})
        return
    loader_samples(data, out, world, rank)
    for method_name in METHODS:
        if world == 1:
            train(method_name, "ddp", data, out, world, rank)
            train(method_name, "ddp", data, out, world, rank, half=True)
        else:
            for parallel in ("ddp", "fsdp2"):
                train(method_name, parallel, data, out, world, rank)
    for case, extra in CASES.items():
        if world == 1:
            train("vjepa", "ddp", data, out, world, rank, name=f"{case}-ddp-w1", grouped_as=2, **extra)
            train("vjepa", "ddp", data, out, world, rank, half=True, name=f"{case}-half-w1", **extra)
        else:
            for parallel in ("ddp", "fsdp2"):
                train("vjepa", parallel, data, out, world, rank, name=f"{case}-{parallel}-w{world}", **extra)
    if world > 1:
        train("vjepa", "fsdp2", data, out, world, rank, name=f"vjepa-hsdp-w{world}", **{"train.replicas": world})
        for shard in (False, True):  # bf16: the replicated teacher is cast to bf16, the sharded one computes in it
            train(
                "salt_student",
                "fsdp2",
                data,
                out,
                world,
                rank,
                name=f"teacher-shard-{shard}",
                **{"train.precision": "bf16", "method.teacher.shard": shard},
            )
        ema_alignment_checks(data, out)


if __name__ == "__main__":
    main()
