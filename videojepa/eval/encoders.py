"""The encoder a downstream task starts from, and what every task needs of it: the helpers that frozen
evaluation (`videojepa.eval`) and fine-tuning (`videojepa.finetune`) share.

    encoder, info, identity = load_task_encoder("runs/vjepa", cfg.model, seed=0)   # or "none": random init
    data, taken = encoder_protocol(cfg.data, encoder.card, given)   # clip keys left at defaults: the card's
    check_protocol(encoder, data, "motion")                         # clips tile into tubelets and patches
    count, names = task_labels(train_ds, val_ds, num_classes=None, where="task motion", ...)
    accuracy(logits, labels, k=5)

`EncoderInfo` is how results describe the encoder (results.json's "encoder").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from pydantic import BaseModel, ConfigDict

from videojepa.data.config import DataConfig
from videojepa.encoder_io import load_encoder, resolve_encoder_path
from videojepa.errors import UserError
from videojepa.models.registry import build_encoder, count_parameters


class EncoderInfo(BaseModel):
    """The encoder a task ran on, as its results record it."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    name: str | None
    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int
    tubelet_size: int
    pos_embed: str | None
    params: int
    random_init: bool


def load_task_encoder(checkpoint: str, model, seed: int) -> tuple[torch.nn.Module, EncoderInfo, dict]:
    """The encoder in `checkpoint` (a pretraining run directory, an encoder file, a converted folder), or for
    "none" a random-init `model` (a config `model` section) drawn from `seed` without touching the global RNG;
    fp32, on the CPU. Returns it, its description for results and its identity for feature-cache keys."""
    if checkpoint == "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = build_encoder(model)
        identity = {"random_init": model.model_dump(), "seed": seed}
    else:
        path = resolve_encoder_path(checkpoint)
        encoder = load_encoder(path)
        stat = path.stat()
        identity = {"file": str(path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns}
    arch = encoder.arch
    # the arch's values, else the encoder's own (a frame encoder's tubelet, one frame, is not an arch key)
    shape = ("embed_dim", "depth", "num_heads", "patch_size", "tubelet_size")
    info = EncoderInfo(
        name=arch.get("name"),
        **{k: arch.get(k, getattr(encoder, k, None)) for k in shape},
        pos_embed=arch.get("pos_embed"),
        params=count_parameters(encoder),
        random_init=checkpoint == "none",
    )
    return encoder, info, identity


def check_protocol(encoder, data: DataConfig, task: str) -> None:
    """The clip must tile into the encoder's tubelets and patches; warn where the task's protocol differs from
    the one the encoder card records (normalisation, frames, crop)."""
    if data.crop_size % encoder.patch_size:
        raise UserError(
            f"data.crop_size={data.crop_size} (task {task}) is not divisible by the encoder's patch "
            f"size {encoder.patch_size}"
        )
    if data.frames_per_clip % encoder.tubelet_size:
        raise UserError(
            f"data.frames_per_clip={data.frames_per_clip} (task {task}) is not divisible by the encoder's "
            f"tubelet size {encoder.tubelet_size}"
        )
    card = encoder.card
    if card is None:  # a random-init encoder: no protocol to compare with
        return
    clip = card.clip
    recorded = {"mean": clip.mean, "std": clip.std, "frames_per_clip": clip.frames, "crop_size": clip.crop}
    task_values = {key: getattr(data, key) for key in recorded}
    task_values.update(mean=tuple(data.mean), std=tuple(data.std))
    differing = [
        f"data.{key}={task_values[key]} (encoder: {value})"
        for key, value in recorded.items()
        if value is not None and value != task_values[key]
    ]
    if differing:  # longer clips or other crops can be intended; other normalisation rarely is
        warnings.warn(
            f"task {task}: the protocol differs from the encoder card's ({card.source or card.method}): "
            + ", ".join(differing),
            stacklevel=2,
        )


# DataConfig key -> the encoder card's ClipProtocol field it defaults to
CARD_PROTOCOL = {
    "frames_per_clip": "frames",
    "frame_step": "frame_step",
    "fps": "fps",
    "crop_size": "crop",
    "mean": "mean",
    "std": "std",
}


def encoder_protocol(data: DataConfig, card, given: Callable[[str], bool]) -> tuple[DataConfig, dict]:
    """The task's protocol with every clip key the user left at its default taken from the encoder card
    (frames, frame step or fps, crop, mean/std); returns it and what was taken. `given(key)` tells whether
    the user set `key`. frame_step and fps go together: setting either keeps both."""
    if card is None:
        return data, {}
    taken = {
        key: getattr(card.clip, field)
        for key, field in CARD_PROTOCOL.items()
        if not given(key) and getattr(card.clip, field) is not None
    }
    if given("frame_step") or given("fps"):
        taken.pop("frame_step", None), taken.pop("fps", None)
    elif "frame_step" in taken or "fps" in taken:
        taken.setdefault("fps", None)
    return (data.model_copy(update=taken) if taken else data), taken


def task_labels(train_ds, val_ds, num_classes: int | None, where: str, key: str, purpose: str) -> tuple[int, list[str]]:
    """The number of classes of a labelled task (`num_classes` when given, else read from the data) and their
    names (the data's class list, or the label numbers). `where` ("task motion", "data.train / data.val"),
    `key` (the num_classes key) and `purpose` ("probing", "fine-tuning") word the one-line errors."""
    labels = [e.label for ds in (train_ds, val_ds) for e in ds.entries]
    if not labels or min(labels) < 0:
        raise UserError(
            f"{where}: some files have no label (a flat folder or a list without labels); "
            f"{purpose} needs labelled data: a class-per-folder tree or a list with labels"
        )
    if num_classes is not None and max(labels) >= num_classes:
        raise UserError(f"{key}={num_classes} but the data has label {max(labels)}")
    count = num_classes or max(train_ds.num_classes, val_ds.num_classes)
    names = train_ds.classes or val_ds.classes  # the list the labels were learned with
    return count, list(names) if len(names) == count else [str(i) for i in range(count)]


def accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k accuracy per leading row: logits (..., B, C), labels (B,) -> (...)."""
    top = logits.topk(k, dim=-1).indices
    return (top == labels[:, None]).any(-1).float().mean(-1)
