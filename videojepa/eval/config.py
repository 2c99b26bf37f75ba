"""The `videojepa probe` config: which encoder, which tasks, which protocol, which probes.

    cfg = load_config("demo/probe", ["probe.checkpoint=runs/vjepa", "run.dir=runs/probe"], schema=ProbeConfig)

Sections (every key has a typed default; unknown keys are errors):
  run       dir (results, resolved config, feature cache), seed (probe init and data order)
  probe     checkpoint: a pretraining run directory, an encoder file `load_encoder` accepts, or `none`
            for a random-init `model.name`; kind (a registered probe kind, `videojepa.eval.probes`: attentive,
            attentive3 = attentive with blocks=3, linear, linear_frames, knn, knn_frames, or a plugin's), heads
            (default: the encoder's), self-attention blocks, queries, encoder layers, frame grid, kNN settings,
            encoder precision
  model     the random-init encoder when probe.checkpoint is `none` (ignored otherwise)
  data      the evaluation protocol shared by all tasks (frames_per_clip, frame_step or fps, num_clips,
            num_views, crop_size, ...; see `videojepa.data.config.DataConfig`) and, for ONE task,
            data.train / data.val (a CSV file or a folder)
  tasks     SEVERAL tasks instead: a list of {name, train, val, num_classes, evaluation, data: {protocol
            overrides}}; evaluation is a registered evaluation protocol (`videojepa.eval.tasks`, default
            classification)
  optim     epochs, batch_size, and lists of lr and weight_decay: every (lr, wd) pair is one probe, and
            all of them are trained together in one pass over the data (`videojepa.eval.grid`); gradient
            clipping, a weight-decay schedule and which parameters decay (the official probes differ there)
  features  cache the encoder's features once (optionally several augmented copies of the training set)
            or stream every training batch through the encoder with fresh augmented views (nothing stored,
            validation streamed too); a cache larger than features.max_cache_gb is refused before any work
  augment   the probes' training views: random clips (crop, flip) or the evaluation ones, views per clip,
            RandAugment and random erasing

The number of classes of a task is read from its data (class names or the largest label) unless given.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveFloat, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from videojepa.config.base import Section
from videojepa.config.schema import ModelConfig
from videojepa.data.augment import ClipAugment
from videojepa.data.config import DataConfig
from videojepa.errors import ConfigError
from videojepa.eval.probes import AttentiveProbe, get_probe_kind, list_probe_kinds
from videojepa.eval.tasks import get_evaluation
from videojepa.models.registry import list_models


def _registered(name: str, allowed: list[str]) -> str:
    """A registry name, or the loader's "got ...; allowed values: ..." error (as for a Literal)."""
    if name not in allowed:
        quoted = [repr(a) for a in allowed]
        expected = ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
    return name


class RunSection(Section):
    dir: str = Field("runs/probe", description="run directory: results.json, results.md, config.yaml, feature cache")
    seed: int = Field(0, description="seed of the probes' initialisation, the data order and the augmentations")
    device: str = Field(
        "auto",
        description="torch device for the encoder and the probes: auto (cuda when "
        "available, else cpu), cpu, cuda, cuda:1, ...",
    )


class ProbeSection(Section):
    checkpoint: str = Field(
        "none", description="pretraining run directory, encoder file, or `none` (random-init model.name)"
    )
    kind: str = Field(
        "attentive",
        description="a registered probe kind (`videojepa probe --help` lists them): attentive: cross-attention "
        "pooling (V-JEPA; probe.blocks self-attention blocks first); attentive3: the same with probe.blocks=3 "
        "(V-JEPA 2's probe); linear: on mean-pooled tokens (no frame order); linear_frames: on each time step's "
        "tokens averaged over a frame_grid x frame_grid grid, concatenated in time order; knn / knn_frames: cosine "
        "k-nearest neighbours on the same features as linear / linear_frames",
    )
    frame_grid: int = Field(
        1, ge=1, description="linear_frames / knn_frames: side of the spatial grid each time step is averaged over"
    )
    heads: int | None = Field(
        None,
        ge=1,
        description="attention heads of the attentive probes (default: the encoder's head count, from its card; "
        "a value that does not divide the feature width is an error)",
    )
    blocks: int = Field(
        0,
        ge=0,
        description="attentive: self-attention blocks on the tokens before the cross-attention (V-JEPA 2's "
        "probe: 3; kind attentive3 sets 3)",
    )
    queries: int = Field(1, ge=1, description="learnable query tokens of the attentive probes")
    out_proj: bool = Field(
        True,
        description="attentive: an output projection after the cross-attention (V-JEPA's probe; V-JEPA 2's has "
        "none, and a probe without it converts to Hugging Face's VJEPA2ForVideoClassification)",
    )
    layers: list[int] = Field(
        [-1],
        min_length=1,
        description="encoder blocks whose normed outputs feed the probe "
        "(several are concatenated along channels); negative counts from the end",
    )
    num_classes: int | None = Field(
        None, ge=2, description="classes of the task given by data.train/data.val (default: read from the data)"
    )
    knn_k: int = Field(20, ge=1, description="knn: neighbours that vote")
    knn_temperature: float = Field(0.07, gt=0, description="knn: votes are weighted by exp(cosine / temperature)")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="encoder forward precision; auto: bf16 on CUDA, on a CPU bf16 only where a matmul probe "
        "measured it faster than fp32 (cached per machine); results record the resolved one",
    )
    test_views: Literal["official", "resized"] = Field(
        "official",
        description="how validation videos are viewed and scored: official (V-JEPA's evaluation code): with several "
        "views (data.num_views) the short side is resized to the crop and the views span the long side, with one "
        "the short side is resized to crop x 256/224 and centre-cropped, and the views' softmax probabilities are "
        "averaged; resized (this project's earlier protocol): the short side resized to crop x "
        "data.eval_resize_ratio for any number of views, and the views' logits averaged",
    )

    @field_validator("kind")
    @classmethod
    def _registered_kind(cls, kind: str) -> str:
        return _registered(kind, list_probe_kinds())


class TaskConfig(Section):
    """One classification task of a multi-task config."""

    name: str
    train: str = Field(description="training set: CSV file or folder")
    val: str = Field(description="validation set: CSV file or folder")
    num_classes: int | None = Field(None, ge=2, description="default: read from the data")
    evaluation: str = Field(
        "classification", description="the evaluation protocol that scores it (`videojepa.eval.tasks`)"
    )
    data: dict[str, object] = Field(default_factory=dict, description="protocol overrides for this task (data.* keys)")


class OptimSection(Section):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(16, ge=1, description="training clips per step")
    lr: list[PositiveFloat] = Field(
        [1e-3], min_length=1, description="peak learning rates (grid axis); cosine decay to 0, no warmup"
    )
    weight_decay: list[float] = Field([0.01], min_length=1, description="AdamW weight decays (grid axis)")
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = Field(
        None, gt=0, description="max gradient norm of each probe (V-JEPA's probe: 1.0); null: no clipping"
    )
    final_weight_decay: float | None = Field(
        None,
        ge=0,
        description="weight decay follows a cosine from each probe's weight_decay to this value over the run "
        "(V-JEPA's probe: 1e-6); null: constant",
    )
    decay_norms_and_biases: bool = Field(
        False,
        description="weight decay on every parameter (V-JEPA 2's probe); false: on weights only, not on biases, "
        "norms or other 1-D tensors (V-JEPA's)",
    )

    @field_validator("lr", "weight_decay", mode="before")
    @classmethod
    def _scalar_to_list(cls, value):
        return [value] if isinstance(value, (int, float, str)) else value


class FeaturesSection(Section):
    cache: bool = Field(
        True,
        description="extract features once and train the probes from memory; false: run the "
        "encoder on every training batch (fresh random crops and flips each epoch)",
    )
    augmentations: int = Field(
        0,
        ge=0,
        description="with cache: 0 caches the evaluation view of each training "
        "clip; n caches n random-resized-crop + flip views, epoch e trains on view e mod n",
    )
    dtype: Literal["fp32", "fp16", "bf16"] = Field("fp32", description="storage type of cached features")
    dir: str | None = Field(
        None,
        description="feature cache folder (default: <run.dir>/features); reused by "
        "later runs with the same encoder, data and protocol",
    )
    batch_size: int = Field(
        16,
        ge=1,
        description="videos per encoder forward (each with its clips x views): extraction, validation, and the "
        "chunks a streamed training batch is encoded in",
    )
    train_videos: int | None = Field(
        None,
        ge=1,
        description="use only the first N videos of each task's training list (quick probes, e.g. the "
        "intermediate points of a curve); cached features of the whole list are cut instead of computed",
    )
    val_videos: int | None = Field(None, ge=1, description="the same for each task's validation list")
    train_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="low-shot: train on this fraction of each class's training videos (rounded up: every class "
        "keeps at least one), a random class-balanced split; see features.splits",
    )
    splits: int = Field(
        1,
        ge=1,
        description="low-shot: random splits of features.train_fraction (each seeded by run.seed and its number); "
        "top-1 is reported as the mean and standard deviation over them, the features computed once",
    )
    max_cache_gb: float = Field(
        50.0,
        gt=0,
        description="largest feature cache (training and validation features together, in GB of 1e9 bytes, on disk "
        "and in memory) a task may make; a larger one is refused before any work, naming its size: stream "
        "instead (features.cache=false) or pool the tokens (a linear or kNN probe)",
    )


class AugmentSection(Section):
    random_clips: bool = Field(
        True,
        description="training clips drawn at random: segment starts, random-resized crops (data.random_resize_*) "
        "and flips (data.horizontal_flip); false: the evaluation clips (centred), as cached features without "
        "features.augmentations are",
    )
    views: int | None = Field(
        None,
        ge=1,
        description="training views per clip (independent random crops, each one sample); default: "
        "data.num_views. The official probes train on 1 and test on data.num_views",
    )
    randaugment_n: int = Field(
        0,
        ge=0,
        description="RandAugment on training clips: ops per clip, each applied with probability 1/2 to every frame "
        "alike (the official video probes: 4); 0 disables",
    )
    randaugment_m: float = Field(7.0, ge=0.0, le=10.0, description="RandAugment magnitude (0..10)")
    randaugment_mstd: float = Field(0.5, ge=0.0, description="RandAugment: std of the magnitude's noise per op")
    erase_prob: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="random erasing on training clips: probability of one box per clip (the same box in every "
        "frame) filled with normal noise (the official probes: 0.25)",
    )
    auto_augment: bool = Field(
        False,
        description="AutoAugment's ImageNet policy on training clips, in place of RandAugment (V-JEPA's image "
        "probes: timm's `original`)",
    )

    def clip_augment(self, data: DataConfig):
        """The per-clip augmentation after the crop (`videojepa.data.augment.ClipAugment`), or None."""
        augment = ClipAugment(
            tuple(data.mean),
            tuple(data.std),
            self.randaugment_n,
            self.randaugment_m,
            self.randaugment_mstd,
            self.erase_prob,
            self.auto_augment,
        )
        return augment if augment.active else None


class ProbeConfig(Section):
    run: RunSection = RunSection()
    probe: ProbeSection = ProbeSection()
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    tasks: list[TaskConfig] = Field(default_factory=list)
    optim: OptimSection = OptimSection()
    features: FeaturesSection = FeaturesSection()
    augment: AugmentSection = AugmentSection()

    def check(self) -> None:
        """Rules across keys; raises ConfigError naming the key."""
        if self.model.init:
            raise ConfigError("model.init", "is a pretraining key: a probe reads its encoder from probe.checkpoint")
        if isinstance(self.data.train, list):
            raise ConfigError(
                "data.train",
                "a weighted mixture of sources is a pretraining setting: a probe trains on one CSV list or folder",
            )
        if self.probe.checkpoint == "none" and self.model.name not in list_models():
            raise ConfigError(
                "model.name", f"unknown model {self.model.name!r}; allowed values: {', '.join(list_models())}"
            )
        if self.tasks and (self.data.train or self.data.val):
            raise ConfigError(
                "tasks",
                "give one task with data.train/data.val or several with tasks:, not both "
                "(add tasks=[] to replace the config's tasks by data.train/data.val)",
            )
        if not self.tasks and not (self.data.train and self.data.val):
            missing = "data.train" if not self.data.train else "data.val"
            raise ConfigError(missing, "is not set: give a CSV file or a folder (or list several tasks under tasks:)")
        kind, blocks = get_probe_kind(self.probe.kind), self.probe.blocks
        fixed = kind.options.get("self_attn_blocks")  # a kind that names its blocks (attentive3: 3)
        if fixed is not None and blocks not in (0, fixed):
            raise ConfigError(
                "probe.blocks", f"{blocks} contradicts probe.kind={kind.name} ({fixed} blocks); use kind=attentive"
            )
        if blocks and not issubclass(kind.cls, AttentiveProbe):
            raise ConfigError("probe.blocks", f"only applies to attentive probes, not probe.kind={kind.name}")
        if self.augment.auto_augment and self.augment.randaugment_n:
            raise ConfigError(
                "augment.auto_augment", "replaces RandAugment: set augment.randaugment_n=0 (or auto_augment=false)"
            )
        if not self.probe.out_proj and not issubclass(kind.cls, AttentiveProbe):
            raise ConfigError("probe.out_proj", f"only applies to attentive probes, not probe.kind={kind.name}")
        if self.tasks and self.probe.num_classes is not None:
            raise ConfigError(
                "probe.num_classes", "only applies to data.train/data.val; set tasks.N.num_classes instead"
            )
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ConfigError("tasks", f"task names must be unique, got {names}")
        for i, task in enumerate(self.tasks):
            task_data(self, i)  # validates the overrides
            get_evaluation(task.evaluation, f"tasks.{i}.evaluation").check(self, i)
        if any(w < 0 for w in self.optim.weight_decay):
            raise ConfigError("optim.weight_decay", f"{self.optim.weight_decay} must be non-negative")
        if not all(0.0 <= b < 1.0 for b in self.optim.betas):
            raise ConfigError("optim.betas", f"{self.optim.betas} must lie in [0, 1)")
        feat = self.features
        if feat.splits > 1 and feat.train_fraction is None:
            raise ConfigError("features.splits", f"{feat.splits} splits of what? set features.train_fraction too")
        if feat.train_fraction is not None and feat.train_videos is not None:
            raise ConfigError(
                "features.train_fraction", "takes a class-balanced random share; drop features.train_videos (a prefix)"
            )
        given = self.given_keys()
        resized = "data.eval_resize_ratio" in given or any("eval_resize_ratio" in t.data for t in self.tasks)
        if self.probe.test_views == "official" and resized:
            raise ConfigError(
                "data.eval_resize_ratio",
                "applies to probe.test_views=resized; probe.test_views=official resizes the short side to the crop "
                "(several views) or to crop x 256/224 (one view), as V-JEPA's evaluation code does",
            )

    def task_list(self) -> list[tuple[TaskConfig, DataConfig]]:
        """Every task with its resolved protocol (the shared data section plus the task's overrides)."""
        if self.tasks:
            return [(task, task_data(self, i)) for i, task in enumerate(self.tasks)]
        task = TaskConfig(
            name=task_name(self.data.train),
            train=self.data.train,
            val=self.data.val,
            num_classes=self.probe.num_classes,
        )
        return [(task, self.data)]


def task_data(cfg: ProbeConfig, index: int) -> DataConfig:
    task = cfg.tasks[index]
    merged = {**cfg.data.model_dump(), **task.data, "train": task.train, "val": task.val}
    try:
        return DataConfig.model_validate(merged)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            raise ConfigError(
                f"tasks.{index}.data.{key}",
                f"unknown key; allowed keys: "
                f"{', '.join(k for k in DataConfig.model_fields if k not in ('train', 'val'))}",
            ) from None
        raise ConfigError(f"tasks.{index}.data.{key}", f"{first['msg']} (got {first.get('input')!r})") from None


def task_name(path: str | Path) -> str:
    """A readable task name from a data path: `synth/appearance/train.csv` -> `appearance`,
    `k400_train.csv` -> `k400`."""
    path = Path(path)
    stem = path.stem if path.suffix else path.name
    if stem.lower() in ("train", "training"):
        return path.parent.name or stem
    return re.sub(r"[_-]?train(ing)?\b|\btrain(ing)?[_-]", "", stem) or stem
