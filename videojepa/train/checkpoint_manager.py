"""What the trainer saves and restores, and the encoders it exports: the checkpoint manager.

    checkpoints = CheckpointManager(run_dir, task, optimizer, scaler, dist, sharded, clip=ClipProtocol...)
    checkpoints.save(counters, keep)         # every rank its part; rank 0 the encoder, its card, the predictor
    counters = checkpoints.resume()          # the newest checkpoint that reads into the live state, or None

A checkpoint (`checkpoint`: sharded DCP tensors + a JSON record, atomic, rotated) holds the task's and the
optimiser's state as each rank holds them, the GradScaler, the data loader's cursor and the trainer's counters
(step, skipped, nonfinite_in_row), so a resumed run continues the uninterrupted trajectory. Checkpoints of the
previous single-file format still resume (`restore_previous_format`). The exported encoder
(RUN/encoder.safetensors, and `train.encoder_snapshots` under RUN/encoders/) is a whole network: under FSDP2
its shards are gathered onto rank 0 first (`gathered`). A latent predictor (V-JEPA, SALT) is written beside it
(RUN/predictor.safetensors; not under FSDP2), so that a run converts to Hugging Face's VJEPA2Model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from videojepa.encoder_io import ENCODER_FILE, PREDICTOR_FILE, ClipProtocol, EncoderCard, save_encoder, save_predictor
from videojepa.errors import UserError
from videojepa.models.predictor import Predictor
from videojepa.models.registry import encoder_from_arch
from videojepa.train import checkpoint as ckpt
from videojepa.train.run_dir import snapshot_path

COUNTERS = ("step", "skipped", "nonfinite_in_row")


class CheckpointManager:
    """See the module docstring. `loader` is set once the trainer has built it (its cursor is saved too)."""

    def __init__(self, run_dir: Path, task, optimizer, scaler, dist, sharded: bool, clip: ClipProtocol, config: dict):
        self.run_dir, self.task, self.optimizer, self.scaler = Path(run_dir), task, optimizer, scaler
        self.dist, self.sharded, self.clip, self.config = dist, sharded, clip, config
        self.loader = None

    # ---------------------------------------------------------------------------------------------- saving
    def state(self, counters: dict) -> dict:
        """Everything an exact resume needs, the tensors as this rank holds them (its shards under FSDP2)."""
        # torch.distributed.checkpoint is imported on use (as in `checkpoint`): it takes ~0.6 s, which every
        # `import videojepa` would pay (the package imports the fine-tuning runner, hence the trainer)
        from torch.distributed.checkpoint.state_dict import get_state_dict

        task, optimizer = get_state_dict(self.task, self.optimizer)
        return {
            "step": counters["step"],
            "method": task,
            "optimizer": optimizer,
            "scaler": self.scaler.state_dict(),
            "loader": self.loader.state_dict() if self.loader is not None else None,
            "skipped": counters["skipped"],
            "nonfinite_in_row": counters["nonfinite_in_row"],
            "config": self.config,
            "world_size": self.dist.world_size,
        }

    def save(self, counters: dict, keep: int) -> None:
        """The checkpoint (every rank writes its part), the exported encoder with its card and the latent
        predictor (rank 0)."""
        ckpt.save_checkpoint(self.run_dir, counters["step"], self.state(counters), keep)
        self.save_encoder(self.run_dir / ENCODER_FILE, counters["step"])
        self.save_predictor(counters["step"])

    def save_snapshot(self, step: int) -> Path:
        """The exported encoder at this step, kept beside the run's latest (`train.encoder_snapshots`)."""
        path = snapshot_path(self.run_dir, step)
        self.save_encoder(path, step)
        return path

    def save_encoder(self, path: Path, step: int) -> None:
        encoder = self.exported_encoder()  # every rank takes part in the gather
        if self.dist.is_main:
            card = EncoderCard.describe(encoder, clip=self.clip, method=self.task.name, step=step)
            save_encoder(encoder, path, card=card)

    def save_predictor(self, step: int) -> None:
        """A latent predictor beside the encoder (V-JEPA, SALT), so a run converts like a released model
        (`videojepa convert --to hf`). Not under FSDP2, whose predictor is sharded across ranks."""
        predictor = getattr(self.task, "predictor", None)
        if type(predictor) is Predictor and not self.sharded and self.dist.is_main:  # not a pixel decoder (a subclass)
            save_predictor(predictor, self.run_dir / PREDICTOR_FILE, {"method": self.task.name, "step": step})

    def exported_encoder(self) -> torch.nn.Module:
        """The network evaluation uses; under FSDP2 a plain copy rebuilt from the gathered weights (rank 0)."""
        return self.gathered(self.task.export_encoder(), lambda encoder: encoder_from_arch(encoder.arch))

    def gathered(self, network: torch.nn.Module, rebuild) -> torch.nn.Module:
        """`network` with whole weights: itself, or under FSDP2 `rebuild(network)` (a plain copy of its
        architecture) loaded with the weights gathered from every rank's shards (on rank 0; every rank calls)."""
        if not self.sharded:
            return network
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        weights = get_model_state_dict(network, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not self.dist.is_main:
            return network
        whole = rebuild(network)
        whole.load_state_dict(weights)
        return whole

    # -------------------------------------------------------------------------------------------- restoring
    def resume(self) -> tuple[Path, dict] | None:
        """(path, record) of the newest checkpoint that reads into the live state (an older one if the newest is
        damaged), restored; None when the run has none. Raises CheckpointError, listing each, when none reads."""
        return ckpt.latest(self.run_dir, self.restore)

    def restore(self, path: Path) -> dict:
        """Checkpoint `path` into the task, optimiser, scaler and data cursor; returns its record (with the
        counters). DCP reads each rank's part in the layout it has now, whatever the world size it was saved on."""
        if path.is_file():
            return self.restore_previous_format(path)
        record = ckpt.read_record(path)
        live = self.state(dict.fromkeys(COUNTERS, 0))
        skeleton, tensors = ckpt.split_state({"method": live["method"], "optimizer": live["optimizer"]})
        ckpt.load_tensors(path, tensors)
        loaded = ckpt.join_state(skeleton, tensors)
        optimizer = {"state": loaded["optimizer"]["state"], "param_groups": record["optimizer"]["param_groups"]}
        from torch.distributed.checkpoint.state_dict import set_state_dict

        set_state_dict(self.task, self.optimizer, model_state_dict=loaded["method"], optim_state_dict=optimizer)
        self.restore_record(record)
        return record

    def restore_previous_format(self, path: Path) -> dict:
        """A single-file checkpoint written before checkpoints were sharded (whole tensors, optimiser state by
        parameter position); it resumes as it was saved, on one process or under DDP."""
        state = ckpt.read_legacy(path)
        missing = [k for k in ("method", "optimizer", "scaler", *COUNTERS) if k not in state]
        if missing:
            raise UserError(f"{path}: the checkpoint lacks {', '.join(missing)}; it was not written by this trainer")
        if self.sharded:
            raise UserError(
                f"{path}: a checkpoint of the previous format resumes without FSDP2 only; resume it "
                f"with train.parallel=ddp once, then switch"
            )
        self.task.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.restore_record(state)
        return state

    def restore_record(self, record: dict) -> None:
        self.scaler.load_state_dict(record["scaler"])
        if self.loader is not None and record.get("loader") is not None:
            self.loader.load_state_dict(record["loader"])
