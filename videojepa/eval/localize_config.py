"""The `videojepa localize` config: frozen action localisation in AVA's protocol.

    cfg = load_config("eval/ava", ["probe.checkpoint=runs/vjepa", "data.videos=ava/videos"], schema=LocalizeConfig)

Sections (every key has a typed default; unknown keys are errors):
  run       dir (results, detections, resolved config, feature cache), seed (head init, batch order), device
  probe     checkpoint (a run directory, an encoder file, or `none` for a random-init `model.name`), the encoder
            layers whose token maps are concatenated, the encoder precision, the head's dropout
  roi       RoIAlign: output resolution, sampling points per bin, aligned (torchvision/detectron2 semantics)
  model     the random-init encoder when probe.checkpoint is `none`
  data      the AVA-layout files (videos folder, train / val annotations, label map, val proposals, excluded
            timestamps), the proposals' score threshold, how timestamps find frames, and the clip protocol
            (frames, step, crop, mean/std: left at their defaults, they come from the encoder's card)
  optim     the linear head's training: epochs, batch of boxes, AdamW, linear warmup then cosine
  features  encoder batch, cache folder and storage type of the per-box features
  report    how many validation keyframes the picture shows
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat

from videojepa.config.base import Section
from videojepa.config.schema import ModelConfig
from videojepa.data.config import IMAGENET_MEAN, IMAGENET_STD
from videojepa.errors import ConfigError
from videojepa.models.registry import list_models


class RunSection(Section):
    dir: str = Field(
        "runs/localize", description="run directory: results.json, results.md, detections.csv, config.yaml"
    )
    seed: int = Field(0, description="seed of the head's initialisation, dropout and the order of training boxes")
    device: str = Field("auto", description="torch device: auto (cuda when available, else cpu), cpu, cuda, ...")


class ProbeSection(Section):
    checkpoint: str = Field(
        "none", description="pretraining run directory, encoder file, or `none` (random-init model.name)"
    )
    layers: list[int] = Field(
        [-1],
        min_length=1,
        description="encoder blocks (0-based; negative counts from the end) whose normed token maps are "
        "concatenated along channels",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="encoder forward precision; auto: bf16 on CUDA, on a CPU bf16 only where a matmul probe "
        "measured it faster than fp32 (cached per machine); results record the resolved one",
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the pooled box feature before the linear layer")


class RoISection(Section):
    resolution: int = Field(7, ge=1, description="RoIAlign output bins per side (max-pooled to one vector per box)")
    sampling_ratio: int = Field(
        0, ge=0, description="sampling points per bin side; 0: ceil(box size in tokens / resolution), adaptive"
    )
    aligned: bool = Field(True, description="shift boxes by -0.5 token (torchvision/detectron2 aligned=True)")


class LocalizeData(Section):
    videos: str | None = Field(None, description="folder of the videos, named <video_id>.<ext> (mp4, mkv, webm, ...)")
    train: str | None = Field(
        None,
        description="training annotations (video_id,timestamp,x1,y1,x2,y2,action_id,person_id): their boxes "
        "train the head",
    )
    val: str | None = Field(None, description="validation annotations, the ground truth of the mAP")
    labelmap: str | None = Field(None, description="the classes trained and evaluated: a .pbtxt label map")
    val_proposals: str | None = Field(
        None,
        description="person boxes of a detector on the validation keyframes (video_id,timestamp,x1,y1,x2,y2,score "
        "or SlowFast's 8 columns); the boxes evaluated. Unset: the ground-truth boxes are evaluated",
    )
    train_excluded: str | None = Field(None, description="excluded timestamps of the training set (video_id,timestamp)")
    val_excluded: str | None = Field(None, description="excluded timestamps of the validation set")
    detection_threshold: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="proposals scored below this are not evaluated (0.9: SlowFast's default and the AVA config of "
        "Feichtenhofer et al. 2021, the protocol V-JEPA follows; SlowFast's supervised AVA configs use 0.8)",
    )
    unmapped_labels: Literal["error", "skip"] = Field(
        "error",
        description="an annotation whose action_id is not in the label map: stop with an error naming its row, or "
        "skip it (AVA's CSVs annotate 80 classes, its evaluation label map lists 60)",
    )
    time_offset: float = Field(
        0.0,
        description="seconds subtracted from timestamps before they become frames: 0 for full AVA movies and the "
        "synthetic task, 900 for AVA's 15-minute cuts",
    )
    frames_per_clip: int = Field(16, ge=1, description="frames per clip, centred on the keyframe")
    frame_step: int = Field(4, ge=1, description="take every k-th frame (ignored when fps is set)")
    fps: float | None = Field(None, gt=0, description="sample clips at this frame rate instead of frame_step")
    crop_size: int = Field(224, ge=1, description="the whole frame is resized to crop_size x crop_size (no crop)")
    mean: tuple[float, float, float] = Field(IMAGENET_MEAN, description="per-channel mean (0..1 scale)")
    std: tuple[float, float, float] = Field(IMAGENET_STD, description="per-channel std (0..1 scale)")
    num_workers: int = Field(2, ge=0, description="DataLoader processes decoding clips (0: the main process)")
    decoder: str = Field("pyav", description="video decoding backend")
    decode_threads: int = Field(1, ge=0, description="FFmpeg threads per decoder (0 = automatic)")


class OptimSection(Section):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1, description="training boxes per step (their features are cached)")
    lr: PositiveFloat = Field(1e-4, description="peak learning rate, reached after the warmup")
    weight_decay: float = Field(0.05, ge=0.0)
    warmup_epochs: float = Field(2.0, ge=0.0, description="linear warmup from warmup_lr to lr, then cosine to min_lr")
    warmup_lr: float = Field(1e-6, ge=0.0)
    min_lr: float = Field(1e-6, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)


class FeaturesSection(Section):
    batch_size: int = Field(8, ge=1, description="keyframe clips per encoder forward")
    dtype: Literal["fp32", "fp16", "bf16"] = Field("fp32", description="storage type of the cached box features")
    dir: str | None = Field(
        None,
        description="cache folder of the box features (default: <run.dir>/features); reused by later runs with "
        "the same encoder, boxes and protocol",
    )


class ReportSection(Section):
    pictures: int = Field(4, ge=0, description="validation keyframes drawn in keyframes.png (0: no picture)")
    boxes_per_picture: int = Field(3, ge=1, description="top-scored (box, class) predictions drawn per keyframe")


class LocalizeConfig(Section):
    run: RunSection = RunSection()
    probe: ProbeSection = ProbeSection()
    roi: RoISection = RoISection()
    model: ModelConfig = ModelConfig()
    data: LocalizeData = LocalizeData()
    optim: OptimSection = OptimSection()
    features: FeaturesSection = FeaturesSection()
    report: ReportSection = ReportSection()

    def check(self) -> None:
        """Rules across keys; raises ConfigError naming the key."""
        if self.model.init:
            raise ConfigError(
                "model.init", "is a pretraining key: localisation reads its encoder from probe.checkpoint"
            )
        if self.probe.checkpoint == "none" and self.model.name not in list_models():
            raise ConfigError(
                "model.name", f"unknown model {self.model.name!r}; allowed values: {', '.join(list_models())}"
            )
        for key in ("videos", "train", "val", "labelmap"):
            if not getattr(self.data, key):
                raise ConfigError(f"data.{key}", "is not set (see `videojepa localize --help` for the AVA files)")
        if self.optim.min_lr > self.optim.lr or self.optim.warmup_lr > self.optim.lr:
            raise ConfigError("optim.lr", f"{self.optim.lr:g} must be at least optim.warmup_lr and optim.min_lr")
        if not all(0.0 <= b < 1.0 for b in self.optim.betas):
            raise ConfigError("optim.betas", f"{self.optim.betas} must lie in [0, 1)")
