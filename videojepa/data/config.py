"""The `data` section of every config: where clips come from and how they are sampled.

One section serves two readers. Pretraining (`videojepa pretrain`) reads every key except num_clips and
num_views, which must stay 1 there (the config loader refuses other values before any work); it uses val
only for the health monitors' held-out batch. Evaluation (`videojepa probe`) reads every key.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError


def default_workers() -> int:
    """DataLoader workers when data.num_workers is not set: the cores this process may run on (its CPU
    affinity), shared by the ranks torchrun starts on this node (LOCAL_WORLD_SIZE), less one for the
    training process itself. A GPU needs several decoding cores per rank (`videojepa data bench`)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(0, cores // ranks - 1)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DataSource(BaseModel):
    """One source of a training mixture (see videojepa.data.mixture for the per-epoch composition)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    path: str = Field(description="a CSV list, a folder, or a prepared copy's list")
    weight: float = Field(
        1.0, gt=0, description="sampling weight: the source's share of every epoch is weight / sum of weights"
    )


class DataConfig(BaseModel):
    # The rules of videojepa.config.base.Section (strict keys, validated on assignment), restated here
    # because the videojepa.config package imports this module.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    train: str | list[DataSource] | None = Field(
        None,
        description="training set: a CSV list (`path label`, or headed `path,label[,start_frame,end_frame]`), "
        "a folder with one sub-folder per class, or a flat folder; or a weighted mixture, a list of "
        "{path, weight} (pretraining)",
    )
    val: str | None = Field(
        None,
        description="validation set, in the same forms as train. Pretraining uses it only for the health "
        "monitors' fixed held-out batch (first 8 clips: feature std and RankMe); unset, that batch is 8 "
        "un-augmented training clips (logged); set but missing, the run stops before any work",
    )
    frames_per_clip: int = Field(16, ge=1, description="frames in one clip")
    frame_step: int = Field(4, ge=1, description="take every k-th frame (ignored when fps is set)")
    fps: float | None = Field(None, gt=0, description="resample clips to this frame rate instead of frame_step")
    num_clips: int = Field(
        1, ge=1, description="evaluation only (pretraining requires 1): temporal segments per video, one clip from each"
    )
    num_views: int = Field(
        1,
        ge=1,
        description="evaluation only (pretraining requires 1): spatial views per clip, evenly spaced crops "
        "for validation (3 = V-JEPA multi-view), independent random crops for probe training",
    )
    crop_size: int = Field(224, ge=1, description="side of the square crop fed to the model, in pixels")
    random_resize_scale: tuple[float, float] = Field(
        (0.3, 1.0), description="training: range of the crop's area as a fraction of the frame"
    )
    random_resize_aspect_ratio: tuple[float, float] = Field(
        (0.75, 1.35), description="training: range of the crop's aspect ratio (width / height)"
    )
    horizontal_flip: bool = Field(True, description="training: flip each clip horizontally with probability 1/2")
    eval_resize_ratio: float = Field(
        256 / 224, ge=1.0, description="evaluation: resize the short side to crop_size * this, then crop"
    )
    mean: tuple[float, float, float] = Field(
        IMAGENET_MEAN, description="per-channel mean for normalisation (0..1 scale)"
    )
    std: tuple[float, float, float] = Field(IMAGENET_STD, description="per-channel std for normalisation (0..1 scale)")
    short_video: Literal["loop", "repeat_last", "skip"] = Field(
        "repeat_last",
        description="a video shorter than one clip: repeat its last frame, loop it, or skip it as bad input",
    )
    max_bad_fraction: float = Field(
        0.05, ge=0.0, le=1.0, description="abort when more than this fraction of the files turn out unreadable"
    )
    num_workers: int = Field(
        default_factory=default_workers,
        ge=0,
        description="DataLoader worker processes (0 = load in the main process); default: the cores this "
        "process may use, divided by the ranks on this node, less one",
    )
    decoder: str = Field("pyav", description="video decoding backend (see videojepa.data.readers.register_backend)")
    decode_threads: int = Field(
        1, ge=0, description="FFmpeg threads per decoder (0 = automatic); the workers already run in parallel"
    )

    @field_validator("train", mode="before")
    @classmethod
    def _mixture_sources(cls, value):
        """A list of sources: each a path (weight 1) or {path, weight}; one clear message for the first bad one."""
        if not isinstance(value, (list, tuple)):
            return value
        sources = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                item = {"path": item}
            if isinstance(item, DataSource):
                sources.append(item)
                continue
            if not isinstance(item, dict):
                raise PydanticCustomError("mixture_source", f"source {i} must be a path or {{path, weight}}")
            try:
                sources.append(DataSource.model_validate(item))
            except ValidationError as err:
                first = err.errors()[0]
                key = ".".join(str(part) for part in first["loc"])
                message = f"source {i}: {key}: {first['msg'].lower()} (a source is {{path, weight}})"
                raise PydanticCustomError("mixture_source", message) from None
        return sources

    worker_timeout: float = Field(
        600.0,
        ge=0,
        description="seconds to wait for a batch from the workers before failing instead of hanging (0 = forever)",
    )
