"""The `videojepa finetune` config: which encoder, which labelled data, which recipe.

    cfg = load_config("demo/finetune", ["finetune.checkpoint=runs/demo/vjepa"], schema=FinetuneConfig)

Sections (every key has a typed default; unknown keys are errors):
  run       dir (checkpoints, best/ and last/ classifiers, results, metrics), seed
  finetune  checkpoint (a pretraining run directory, an encoder file, a `videojepa convert` folder, or `none`
            for a random-init model.name), the head (attentive pooler or mean-pool + linear, dropout before
            its last linear layer), layer-wise lr decay, a frozen-encoder option, num_classes
  model     model.drop_path (stochastic depth of the fine-tuned encoder, loaded or not); the other keys
            describe the random-init encoder when finetune.checkpoint is `none` (ignored otherwise)
  data      data.train / data.val (labelled CSV or class-per-folder tree) and the clip protocol; keys left at
            their defaults come from the encoder card (frames, frame step or fps, crop, mean/std); both are
            required at run time (not in presets, which describe a recipe). Training
            reads one clip and one view per video; the test views are set under `eval`
  train     the trainer's settings (`videojepa.config.schema.TrainConfig`: lr, warmup, cosine, precision,
            accumulation, checkpoints, ...) plus `epochs` / `warmup_epochs`, which, when given, set
            train.steps and train.warmup_steps from the size of data.train
  augment   repeated augmentation, RandAugment, random erasing, mixup / cutmix, label smoothing
  eval      the multi-view test: num_segments x num_crops views per video, logits averaged
Defaults follow the V-JEPA paper's fine-tuning recipe (its Table 8, K400 column).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from videojepa.config.base import Section
from videojepa.config.loader import check_train_schedule
from videojepa.config.schema import ModelConfig, TrainConfig
from videojepa.data.config import DataConfig
from videojepa.errors import ConfigError
from videojepa.models.registry import list_models


class RunSection(Section):
    dir: str = Field(
        "runs/finetune",
        description="run directory: checkpoints, best/ and last/ classifiers, "
        "results.json, results.md, metrics.jsonl, config.yaml",
    )
    seed: int = Field(0, description="seed for the head's initialisation, the data order and the augmentations")


class FinetuneSection(Section):
    checkpoint: str = Field(
        "none",
        description="encoder to fine-tune: pretraining run directory, encoder file, "
        "`videojepa convert` folder, or `none` (random-init model.name)",
    )
    head: Literal["attentive", "linear"] = Field(
        "linear",
        description="linear: on mean-pooled tokens (the paper's fine-tuning head, after VideoMAE); "
        "attentive: a cross-attention pooler with one learned query (V-JEPA's frozen-evaluation probe)",
    )
    heads: int = Field(12, ge=1, description="attention heads of the attentive pooler")
    head_dropout: float = Field(0.5, ge=0.0, lt=1.0, description="dropout before the head's last linear layer")
    layer_decay: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="layer-wise lr decay: block i of a depth-L encoder "
        "trains at lr * decay^(L - i), the embedding at lr * decay^(L + 1), head and final "
        "norm at lr",
    )
    freeze_encoder: bool = Field(
        False,
        description="train the head only; the encoder's weights stay bitwise "
        "unchanged (a probe trained end to end through the trainer)",
    )
    num_classes: int | None = Field(None, ge=2, description="default: read from the data")


class FinetuneModelSection(ModelConfig):
    drop_path: float = Field(
        0.2,
        ge=0.0,
        lt=1.0,
        description="stochastic depth of the fine-tuned encoder (the "
        "last block's rate; rates rise linearly from 0 over the blocks)",
    )


class FinetuneTrainSection(TrainConfig):
    """The trainer's settings with the paper's fine-tuning defaults, plus epochs."""

    steps: int = Field(1000, ge=1, description="optimiser steps (set from train.epochs when that is given)")
    epochs: float | None = Field(
        None, gt=0, description="passes over data.train; sets train.steps = ceil(epochs * videos / batch_size)"
    )
    warmup_epochs: float | None = Field(None, ge=0, description="sets train.warmup_steps like train.epochs")
    batch_size: int = Field(
        64,
        ge=1,
        description="VIDEOS per optimiser step, all devices together; with "
        "augment.repeated = R the step trains on R x batch_size clips",
    )
    lr: float = Field(3e-4, gt=0.0)
    start_lr: float = Field(1e-8, ge=0.0)
    final_lr: float = Field(1e-6, ge=0.0)
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = Field(0.05, ge=0.0)
    final_weight_decay: float = Field(0.05, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = Field(None, gt=0.0, description="max gradient norm; null disables")
    checkpoint_every: int = Field(
        500, ge=1, description="also when the classifier is scored on data.val (one view) and best/ is updated"
    )


class AugmentSection(Section):
    repeated: int = Field(
        2,
        ge=1,
        description="repeated augmentation: clips drawn (and augmented) per video and step (the paper's num_sample)",
    )
    randaugment_n: int = Field(
        4,
        ge=0,
        description="RandAugment: ops per clip, each applied with probability 1/2 to every frame alike; 0 disables",
    )
    randaugment_m: float = Field(7.0, ge=0.0, le=10.0, description="RandAugment magnitude (0..10)")
    randaugment_mstd: float = Field(0.5, ge=0.0, description="RandAugment: std of the magnitude's noise per op")
    erase_prob: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="random erasing: probability of one box per clip "
        "(the same box in every frame) filled with normal noise",
    )
    mixup: float = Field(0.8, ge=0.0, description="mixup Beta(a, a) parameter; 0 disables mixup")
    cutmix: float = Field(1.0, ge=0.0, description="cutmix Beta(a, a) parameter; 0 disables cutmix")
    mix_prob: float = Field(1.0, ge=0.0, le=1.0, description="probability that a batch is mixed at all")
    switch_prob: float = Field(0.5, ge=0.0, le=1.0, description="with both on: probability of cutmix over mixup")
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0, description="label smoothing of the (mixed) targets")


class EvalSection(Section):
    num_segments: int = Field(5, ge=1, description="test: temporal segments per video (one clip from each)")
    num_crops: int = Field(3, ge=1, description="test: spatial crops per clip, evenly spaced along the long side")
    batch_size: int = Field(8, ge=1, description="test videos per forward (each holds segments x crops clips)")


class FinetuneConfig(Section):
    run: RunSection = RunSection()
    finetune: FinetuneSection = FinetuneSection()
    model: FinetuneModelSection = FinetuneModelSection()
    data: DataConfig = DataConfig()
    train: FinetuneTrainSection = FinetuneTrainSection()
    augment: AugmentSection = AugmentSection()
    eval: EvalSection = EvalSection()

    def check(self) -> None:
        """Rules across keys; raises ConfigError naming the key."""
        if self.model.init:
            raise ConfigError(
                "model.init", "is a pretraining key: fine-tuning reads its encoder from finetune.checkpoint"
            )

        if self.train.online_probe is not None:
            raise ConfigError(
                "train.online_probe",
                "is a pretraining key: fine-tuning scores data.val itself (train.checkpoint_every)",
            )
        if self.finetune.checkpoint == "none" and self.model.name not in list_models():
            raise ConfigError(
                "model.name", f"unknown model {self.model.name!r}; allowed values: {', '.join(list_models())}"
            )
        for key in ("num_clips", "num_views"):
            if getattr(self.data, key) != 1:
                raise ConfigError(
                    f"data.{key}",
                    f"{getattr(self.data, key)}: fine-tuning trains on one clip and one "
                    f"view per video (allowed: 1); set the test views with eval.num_segments and "
                    f"eval.num_crops",
                )
        if self.train.warmup_epochs is not None and self.train.epochs is None:
            raise ConfigError("train.warmup_epochs", "needs train.epochs (or give train.warmup_steps)")
        if self.train.batch_size % self.train.accum_steps:
            raise ConfigError(
                "train.batch_size",
                f"{self.train.batch_size} is not divisible by train.accum_steps={self.train.accum_steps}",
            )
        if not all(0.0 <= b < 1.0 for b in self.train.betas):
            raise ConfigError("train.betas", f"{self.train.betas} must lie in [0, 1)")
        if self.train.epochs is None:  # else train.steps is known once the data is (resolve_epochs checks then)
            check_train_schedule(self.train)

    def resolve_epochs(self, num_videos: int) -> None:
        """Set train.steps and train.warmup_steps from train.epochs and train.warmup_epochs (in place). A steps
        key the user gave as well must agree (a run's saved config.yaml holds both)."""
        per_epoch = num_videos / self.train.batch_size
        given = self.given_keys()
        for epochs_key, steps_key, least in (("epochs", "steps", 1), ("warmup_epochs", "warmup_steps", 0)):
            epochs = getattr(self.train, epochs_key)
            if epochs is None:
                continue
            steps = max(least, math.ceil(epochs * per_epoch))
            if f"train.{steps_key}" in given and getattr(self.train, steps_key) != steps:
                raise ConfigError(
                    f"train.{steps_key}",
                    f"{getattr(self.train, steps_key)} contradicts "
                    f"train.{epochs_key}={epochs:g} ({steps} steps of {self.train.batch_size} for "
                    f"{num_videos} videos); give one of them",
                )
            setattr(self.train, steps_key, steps)
        check_train_schedule(self.train)
