"""Typed defaults for every configuration.

A pretraining config is the sections below; YAML presets only list what differs from these
defaults. Defaults follow the ViT-L recipe of the SALT paper (arXiv 2509.24317), which trains as V-JEPA 2 does.
A *plan* config (top-level `stages:`) strings several pretraining configs together, e.g. the
two SALT stages, for the FLOPs accountant.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from videojepa.config.base import Section
from videojepa.data.config import DataConfig


class RunConfig(Section):
    dir: str = Field("runs/default", description="run directory (checkpoints, logs, resolved config)")
    seed: int = Field(0, description="seed for weights, data order and masks")


class ModelConfig(Section):
    name: str = Field("vit_large", description="encoder architecture (see `videojepa models`)")
    patch_size: int = Field(16, ge=1)
    tubelet_size: int = Field(2, ge=1, description="frames per token")
    pos_embed: Literal["sincos", "rope", "rope_vjepa2"] = Field(
        "rope",
        description="3D sin-cos (V-JEPA), 3D RoPE (V-JEPA 2 / SALT), or RoPE in V-JEPA 2's released "
        "channel layout (for converted V-JEPA 2 checkpoints)",
    )
    drop_path: float = Field(0.0, ge=0.0, lt=1.0)
    init: str | None = Field(
        None,
        description="start from the weights in this folder (a run directory or a `videojepa convert` output): "
        "the encoder (and V-JEPA's EMA target), and the predictor when the folder has one; architectures must "
        "match the config's",
    )


class PredictorConfig(Section):
    """The narrow ViT after the encoder: latent predictor, or pixel decoder for pixel methods."""

    depth: int = Field(12, ge=1)
    embed_dim: int = Field(384, ge=1)
    num_heads: int = Field(12, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)


class MaskConfig(Section):
    """One mask generator. Several are sampled per clip; their losses are averaged."""

    kind: Literal["multiblock", "tube"] = "multiblock"
    num_blocks: int = Field(8, ge=1, description="multiblock: blocks whose union is the target")
    spatial_scale: float = Field(0.15, gt=0.0, le=1.0, description="multiblock: block area / frame area")
    temporal_scale: float = Field(1.0, gt=0.0, le=1.0, description="multiblock: block length / clip length")
    aspect_ratio: tuple[float, float] = Field((0.75, 1.5), description="multiblock: height/width range")
    ratio: float = Field(0.9, gt=0.0, lt=1.0, description="tube: fraction of positions masked")


def default_masks() -> list[MaskConfig]:
    return [MaskConfig(num_blocks=8, spatial_scale=0.15), MaskConfig(num_blocks=2, spatial_scale=0.7)]


class TeacherConfig(Section):
    """salt_student only: the frozen teacher encoder."""

    checkpoint: str | None = Field(None, description="encoder checkpoint or run directory")
    model: str | None = Field(None, description="teacher architecture when no checkpoint is given (FLOPs, tests)")
    shard: bool = Field(
        False,
        description="train.parallel=fsdp2: shard the frozen teacher (forward-only FSDP2 "
        "module) instead of replicating it in bf16",
    )


class MethodConfig(Section):
    """The pretraining method and its own settings; each key says which methods read it."""

    name: str = Field(
        "vjepa",
        description="a registered method (see `videojepa models`): vjepa, salt_teacher, "
        "salt_student, videomae, or one registered by a plugin",
    )
    loss_exponent: float = Field(1.0, gt=0.0, description="vjepa, salt_student: latent loss mean |pred - LN(target)|^p")
    ema: tuple[float, float] = Field(
        (0.996, 1.0), description="vjepa: EMA momentum, linear start -> end over the schedule horizon"
    )
    teacher: TeacherConfig = TeacherConfig()
    feature_reg: float = Field(
        0.0,
        ge=0.0,
        description="every masked method: weight of a variance-covariance penalty (VICReg's) on the context "
        "encoder's features, added to the loss: keeps them from collapsing to a few directions at high lr; "
        "its statistics span the batch on all ranks, but each micro-batch when train.accum_steps > 1",
    )
    pixel_norm: Literal["tubelet", "none"] = Field(
        "tubelet",
        description="salt_teacher, videomae: pixel targets normalised by each tubelet's own mean and std per "
        "channel (tubelet: VideoMAE's norm_pix_loss) or only by the input's mean/std (none)",
    )


class TrainConfig(Section):
    steps: int = Field(240_000, ge=1)
    batch_size: int = Field(3072, ge=1, description="clips per optimiser step, all devices together")
    accum_steps: int = Field(1, ge=1, description="micro-batches per optimiser step")
    lr: float = Field(6.25e-4, gt=0.0)
    start_lr: float = Field(2e-4, ge=0.0)
    final_lr: float = Field(1e-6, ge=0.0)
    warmup_steps: int = Field(10_000, ge=0)
    weight_decay: float = Field(0.04, ge=0.0)
    final_weight_decay: float = Field(0.4, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0.0)
    grad_clip: float | None = Field(0.02, gt=0.0, description="max gradient norm; null disables")
    schedule_scale: float = Field(
        1.0, ge=1.0, description="schedules run over steps*scale and stop at steps (V-JEPA: 1.25)"
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="autocast dtype; auto: bf16 on CUDA, on a CPU bf16 only where a matmul probe measured it "
        "faster than fp32 (cached per machine); the run records the resolved one and a resumed run keeps it",
    )
    parallel: Literal["ddp", "fsdp2"] = Field(
        "ddp", description="under torchrun: DDP replicates the method; FSDP2 shards each network per block"
    )
    replicas: int = Field(
        1,
        ge=1,
        description="fsdp2: replicate over this many groups of ranks and shard within "
        "each (HSDP, e.g. one group per node)",
    )
    compile: bool = Field(
        False,
        description="torch.compile every transformer block of every network (trained, "
        "EMA target, frozen teacher), with dynamic token counts",
    )
    compile_backend: str = Field("inductor", description="torch.compile backend (aot_eager: no code generation)")
    activation_checkpointing: bool = False
    max_nonfinite_steps: int = Field(20, ge=1, description="abort after this many non-finite steps in a row")
    collapse_std: float = Field(0.02, ge=0.0, description="warn when feature/target per-channel std falls below")
    collapse_rank: float = Field(2.0, ge=0.0, description="warn when the held-out effective rank (RankMe) falls below")
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    encoder_snapshots: list[int] = Field(
        default_factory=list,
        description="steps after which the exported encoder is also kept, as encoders/step_XXXXXXXX.safetensors "
        "(points of an accuracy-vs-compute curve; 0: the initial weights); steps past train.steps are never reached",
    )

    @field_validator("encoder_snapshots")
    @classmethod
    def _positive_steps(cls, steps: list[int]) -> list[int]:
        if any(s < 0 for s in steps):
            raise ValueError(f"snapshot steps must be >= 0, got {steps}")
        return sorted(set(steps))


class PretrainConfig(Section):
    run: RunConfig = RunConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    predictor: PredictorConfig = PredictorConfig()
    masks: list[MaskConfig] = Field(default_factory=default_masks)
    method: MethodConfig = MethodConfig()
    train: TrainConfig = TrainConfig()


class StageConfig(Section):
    name: str
    config: str = Field(description="preset name or path of this stage's pretraining config")
    overrides: dict[str, object] = Field(default_factory=dict, description="dotted key -> value")


class PlanConfig(Section):
    """Several pretraining stages accounted together (e.g. SALT teacher then student)."""

    stages: list[StageConfig] = Field(min_length=1)
