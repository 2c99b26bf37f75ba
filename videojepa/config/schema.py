"""Typed defaults for every configuration.

A pretraining config is the sections below; YAML presets only list what differs from these
defaults. The defaults are the SALT paper's ViT-L recipe (arXiv 2509.24317: RoPE ViT-L/16, 16x224 clips,
batch 3072, warmup-cosine lr, cosine weight decay 0.04 -> 0.4, AdamW betas (0.9, 0.95), clip 0.02); they
are not V-JEPA's or V-JEPA 2's recipes, which differ in the optimiser and schedules: use the presets
`vjepa/*` and `vjepa2/*` for those (`videojepa config PRESET` shows every value and where it was set).
A *plan* config (top-level `stages:`) strings several pretraining configs together, e.g. the
two SALT stages, for the FLOPs accountant.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SerializeAsAny, field_validator

from videojepa.config.base import Section
from videojepa.data.config import DataConfig
from videojepa.errors import ConfigError


class RunConfig(Section):
    dir: str = Field("runs/default", description="run directory (checkpoints, logs, resolved config)")
    seed: int = Field(0, description="seed for weights, data order and masks")


class ModelConfig(Section):
    name: str = Field("vit_large", description="encoder architecture (see `videojepa models`)")
    patch_size: int = Field(16, ge=1)
    tubelet_size: int = Field(2, ge=1, description="frames per token")
    pos_embed: Literal["sincos", "rope", "rope_vjepa2", "sincos_1d"] = Field(
        "rope",
        description="3D sin-cos (V-JEPA), 3D RoPE (V-JEPA 2 / SALT), RoPE in V-JEPA 2's released "
        "channel layout (V-JEPA 2's code and checkpoints), or a 1-D sin-cos table over the flat token index "
        "(VideoMAE)",
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
    zero_init_mask_tokens: bool = Field(
        False, description="start the learned mask tokens at 0 (V-JEPA's official configs) instead of N(0, 0.02)"
    )


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


DEFAULT_METHOD = "vjepa"


class MethodSection(Section):
    """The `method` section: `name` picks a registered method, and that method's own section (a subclass of
    this one, registered with the method: `Method.config_section`) declares the rest of its keys, so a method
    from outside the package has settings of its own and a misspelt one is an error like any other.

    A key that another registered method declares but this one does not (`method.ema` in a salt_teacher config
    made from a V-JEPA preset, `method.teacher` in a run's config.yaml saved when every method's keys were in
    one section) is left out, as those keys were always ignored by the methods that do not read them."""

    name: str = Field(
        DEFAULT_METHOD,
        description="a registered method (see `videojepa models`): vjepa, salt_teacher, "
        "salt_student, videomae, or one registered by a plugin",
    )


# method name -> its section class; filled by `videojepa.methods.register_method` (the built-in methods register
# when the package is imported). The config knows no method: it validates `method:` with the section the name
# has here.
_METHOD_SECTIONS: dict[str, type[MethodSection]] = {}


def register_method_section(name: str, section: type[MethodSection]) -> None:
    if not (isinstance(section, type) and issubclass(section, MethodSection)):
        raise TypeError(f"method {name!r}: its config section must be a MethodSection subclass, got {section!r}")
    _METHOD_SECTIONS[name] = section


def unregister_method_section(name: str) -> None:
    _METHOD_SECTIONS.pop(name, None)


def method_section(name: str) -> type[MethodSection]:
    """The section class of method `name`; ConfigError naming method.name when no method has that name."""
    if name not in _METHOD_SECTIONS:
        raise ConfigError("method.name", f"unknown method {name!r}; allowed values: {', '.join(_METHOD_SECTIONS)}")
    return _METHOD_SECTIONS[name]


def method_keys(section: dict, name: str) -> dict:
    """The keys of a raw `method` mapping that method `name` reads: without those only other registered methods
    declare (what validation leaves out) and, for a known method, every unknown key kept (validation refuses
    it)."""
    own = method_section(name).model_fields
    others = {key for cls in _METHOD_SECTIONS.values() for key in cls.model_fields} - set(own)
    return {key: value for key, value in section.items() if key not in others}


def with_method(cfg: PretrainConfig, name: str) -> PretrainConfig:
    """`cfg` with method `name` instead of its own: its method keys that `name` has are kept, the others left
    out (the rest at `name`'s defaults)."""
    section = build_method_section({**method_keys(cfg.method.model_dump(), name), "name": name})
    return cfg.model_copy(update={"method": section})


def build_method_section(value) -> MethodSection:
    """A `method` mapping (or section) as the section of the method it names (default vjepa)."""
    if isinstance(value, MethodSection):
        if type(value) is _METHOD_SECTIONS.get(value.name):
            return value
        value = value.model_dump()
    if not isinstance(value, dict):
        raise ConfigError("method", f"must be a mapping of the method's settings, got {value!r}")
    name = value.get("name", DEFAULT_METHOD)
    return method_section(name).model_validate(method_keys(value, name))


class OnlineProbeConfig(Section):
    """A cheap probe of the encoder during pretraining (`videojepa.eval.online`); it never changes the training."""

    train: str = Field(description="a small labelled training set (CSV list or class folders), encoded at each probe")
    val: str = Field(description="its labelled validation set")
    every: int = Field(1000, ge=1, description="probe after every N optimiser steps (and after the last one)")
    kinds: list[str] = Field(
        ["linear_frames", "knn"],
        min_length=1,
        description="probe kinds that read pooled features (`videojepa probe --help`): linear_frames (a linear "
        "classifier on each time step's mean token, concatenated in time order), linear, knn, knn_frames",
    )
    frame_grid: int = Field(
        1, ge=1, description="*_frames kinds: side of the spatial grid each time step is averaged over"
    )
    epochs: int = Field(20, ge=1, description="linear kinds: epochs on the probe set's features")
    lr: float = Field(1e-3, gt=0, description="linear kinds: AdamW peak lr (cosine to 0)")
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(16, ge=1, description="clips per encoder forward and per linear-probe step")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="the encoder's forward (autocast)")


class TrainConfig(Section):
    steps: int = Field(240_000, ge=1)
    batch_size: int = Field(3072, ge=1, description="clips per optimiser step, all devices together")
    accum_steps: int = Field(1, ge=1, description="micro-batches per optimiser step")
    lr: float = Field(6.25e-4, gt=0.0)
    start_lr: float = Field(2e-4, ge=0.0)
    final_lr: float = Field(1e-6, ge=0.0)
    warmup_steps: int = Field(10_000, ge=0)
    lr_schedule: Literal["cosine", "wsd"] = Field(
        "cosine",
        description="after the linear warmup start_lr -> lr: cosine, lr -> final_lr over the rest of the horizon "
        "(V-JEPA, SALT); wsd, lr held constant, then a linear cooldown to final_lr over the last "
        "train.cooldown_steps of the horizon (V-JEPA 2)",
    )
    cooldown_steps: int = Field(
        0,
        ge=0,
        description="wsd: steps at the end of the schedule horizon (steps * schedule_scale) over which lr "
        "falls linearly to final_lr; 0: lr stays constant after warmup",
    )
    lr_base_batch: int | None = Field(
        None,
        ge=1,
        description="when set, lr, start_lr and final_lr are given for this many clips per step and scale "
        "linearly with train.batch_size (VideoMAE's convention: 256); null: they are used as given",
    )
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
    online_probe: OnlineProbeConfig | None = Field(
        None,
        description="a small labelled train/val pair probed every N steps on the exported encoder (top-1 to "
        "metrics.jsonl, TensorBoard and the log, with its share of the run's time); it never changes the "
        "training, and adding or removing it does not block a resume",
    )
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
    method: SerializeAsAny[MethodSection] = Field(
        default_factory=lambda: build_method_section({}),
        description="the method (`name`) and its own settings, as its registered section declares them",
    )
    train: TrainConfig = TrainConfig()

    @field_validator("method", mode="before")
    @classmethod
    def _method_section(cls, value) -> MethodSection:
        return build_method_section(value)


class StageConfig(Section):
    name: str
    config: str = Field(description="preset name or path of this stage's pretraining config")
    overrides: dict[str, object] = Field(default_factory=dict, description="dotted key -> value")


class PlanConfig(Section):
    """Several pretraining stages accounted together (e.g. SALT teacher then student)."""

    stages: list[StageConfig] = Field(min_length=1)
