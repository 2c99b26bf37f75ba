"""Encoder (and predictor) weights as self-describing safetensors files, described by an `EncoderCard`.

    save_encoder(encoder, "run/encoder.safetensors", card=EncoderCard.describe(encoder, clip=..., method="vjepa"))
    encoder = load_encoder("run/encoder.safetensors")   # or the run directory, or a `convert` output folder
    encoder.card.clip.frames, encoder.card.source

The card is typed and versioned (format `videojepa.encoder/2`): the architecture including the
variant flags of converted checkpoints, the clip protocol the encoder expects (frames, frame step or
fps, crop, mean/std), the method and step that produced it, and where it came from. `extract` and
`probe` take their defaults from it. Files of the first format (`videojepa.encoder/1`: untyped
"arch", "data", "extra" dicts) still load; their card is read from those dicts.

Loading is strict: a missing, unexpected or wrongly shaped tensor is an error that names it,
never a silent partial load. A directory may also hold `predictor.safetensors` (a converted V-JEPA 2
predictor), read by `load_predictor`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from videojepa.errors import UserError
from videojepa.models.predictor import Predictor
from videojepa.models.registry import encoder_from_arch
from videojepa.utils.files import atomic_path

FORMAT_V1 = "videojepa.encoder/1"
FORMAT = "videojepa.encoder/2"
PREDICTOR_FORMAT = "videojepa.predictor/1"
ENCODER_FILE = "encoder.safetensors"
PREDICTOR_FILE = "predictor.safetensors"


class ClipProtocol(BaseModel):
    """How clips must be prepared for this encoder; None = not recorded."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    frames: int | None = None
    frame_step: int | None = None
    fps: float | None = None  # when set, windows are resampled to this rate instead of taking every k-th frame
    crop: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    @classmethod
    def from_data(cls, data) -> ClipProtocol:
        """The protocol a config's data section trains or evaluates with."""
        return cls(
            frames=data.frames_per_clip,
            frame_step=data.frame_step,
            fps=data.fps,
            crop=data.crop_size,
            mean=tuple(data.mean),
            std=tuple(data.std),
        )


class EncoderCard(BaseModel):
    """Everything a reader needs besides the weights. `arch` = the `VisionTransformer` arguments (+ "name"), or
    with `kind: frames` a `FrameEncoder`'s (an image model applied to every frame, `videojepa.models.frames`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    arch: dict
    clip: ClipProtocol = ClipProtocol()
    method: str | None = None
    step: int | None = None
    source: dict | None = None  # converted weights: {"format": "hf" | "official" | "videomae", "path": ..., ...}

    @classmethod
    def describe(cls, encoder: torch.nn.Module, **fields) -> EncoderCard:
        return cls(arch=dict(encoder.arch), **fields)

    @classmethod
    def from_v1(cls, arch: dict, data: dict, extra: dict) -> EncoderCard:
        """The card of a `videojepa.encoder/1` file (the trainer's data and extra dicts)."""
        clip = ClipProtocol(
            frames=data.get("frames_per_clip"),
            frame_step=data.get("frame_step"),
            fps=data.get("fps"),
            crop=data.get("crop_size"),
            mean=data.get("mean"),
            std=data.get("std"),
        )
        return cls(arch=arch, clip=clip, method=extra.get("method"), step=extra.get("step"))

    def legacy(self) -> dict:
        """The format-1 view {"arch", "data", "extra"}, for code that reads `encoder.meta`."""
        c = self.clip
        data = {
            "frames_per_clip": c.frames,
            "frame_step": c.frame_step,
            "fps": c.fps,
            "crop_size": c.crop,
            "mean": list(c.mean) if c.mean else None,
            "std": list(c.std) if c.std else None,
        }
        extra = {"method": self.method, "step": self.step}
        return {
            "arch": self.arch,
            "data": {k: v for k, v in data.items() if v is not None},
            "extra": {k: v for k, v in extra.items() if v is not None},
        }


def save_encoder(
    encoder: torch.nn.Module,
    path: str | Path,
    data: dict | None = None,
    extra: dict | None = None,
    card: EncoderCard | None = None,
) -> None:
    """Write weights + card atomically (temp file, fsync, rename).

    Give `card`, or the format-1 style `data` (frames_per_clip, frame_step, fps, crop_size, mean, std)
    and `extra` (method, step) dicts, which are turned into one.
    """
    if card is None:
        card = EncoderCard.from_v1(dict(encoder.arch), data or {}, extra or {})
    elif card.arch != encoder.arch:
        raise ValueError(f"card architecture {card.arch} is not the encoder's {encoder.arch}")
    _write(path, encoder, {"format": FORMAT, "card": card.model_dump_json()})


def save_predictor(predictor: torch.nn.Module, path: str | Path, source: dict | None = None) -> None:
    _write(
        path,
        predictor,
        {"format": PREDICTOR_FORMAT, "arch": json.dumps(predictor.arch), "source": json.dumps(source or {})},
    )


def _write(path: str | Path, module: torch.nn.Module, metadata: dict) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def resolve_encoder_path(path: str | Path, file: str = ENCODER_FILE) -> Path:
    path = Path(path)
    if path.is_dir():
        if (path / file).is_file():
            return path / file
        raise UserError(
            f"{path}: no {file} in this directory (is it a pretraining run that has "
            f"written a checkpoint yet, or a `videojepa convert` output?)"
        )
    if not path.is_file():
        raise UserError(f"{path}: no such encoder file or run directory")
    return path


def _header(path: Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as err:  # safetensors raises several types for a damaged header
        raise UserError(f"{path}: not a readable safetensors file ({err})") from None


def read_card(path: str | Path) -> EncoderCard:
    """The card of an encoder file or directory (either format)."""
    path = resolve_encoder_path(path)
    meta = _header(path)
    fmt = meta.get("format")
    try:
        if fmt == FORMAT:
            return EncoderCard.model_validate_json(meta["card"])
        if fmt == FORMAT_V1:
            return EncoderCard.from_v1(
                json.loads(meta["arch"]), json.loads(meta.get("data", "{}")), json.loads(meta.get("extra", "{}"))
            )
    except (ValidationError, KeyError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: damaged encoder card ({str(err).splitlines()[0]})") from None
    raise UserError(
        f"{path}: not a videojepa encoder file (format {fmt!r}, expected {FORMAT!r}); "
        f"use `videojepa convert` for other checkpoints"
    )


def read_metadata(path: str | Path) -> dict:
    """{"arch", "data", "extra"} as format 1 stored them (kept for existing callers), plus "card"."""
    card = read_card(path)
    return {**card.legacy(), "card": card}


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the encoder a file (or run / convert directory) describes and load its weights strictly.

    The returned module has `.card` (an `EncoderCard`) and `.meta` (its format-1 dict view).
    """
    from safetensors.torch import load_file

    path = resolve_encoder_path(path)
    card = read_card(path)
    encoder = encoder_from_arch(card.arch)
    load_state_strict(encoder, load_file(str(path)), str(path))
    encoder.card, encoder.meta = card, card.legacy()
    return encoder.to(device).eval()


def load_predictor(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """A predictor file (or a directory holding predictor.safetensors), strictly; `.source` says where from."""
    from safetensors.torch import load_file

    path = resolve_encoder_path(path, PREDICTOR_FILE)
    meta = _header(path)
    if meta.get("format") != PREDICTOR_FORMAT:
        raise UserError(
            f"{path}: not a videojepa predictor file (format {meta.get('format')!r}, expected {PREDICTOR_FORMAT!r})"
        )
    predictor = Predictor(**json.loads(meta["arch"]))
    load_state_strict(predictor, load_file(str(path)), str(path))
    predictor.source = json.loads(meta.get("source", "{}"))
    return predictor.to(device).eval()


def load_state_strict(module: torch.nn.Module, state: dict, source: str) -> None:
    """load_state_dict that reports every mismatch by name and shape."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} tensors (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"wrong shape: {'; '.join(wrong[:3])}")
    if problems:
        raise UserError(f"{source}: does not fit the model: " + "; ".join(problems))
    module.load_state_dict(state)
