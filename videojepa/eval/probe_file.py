"""A trained attentive probe on disk: `probe.safetensors`, its weights with a `ProbeCard` in the metadata.

    save_probe(probe, "runs/probe/probes/motion.safetensors", ProbeCard(arch=probe.arch, protocol=..., ...))
    probe = load_probe("runs/probe/probes/motion.safetensors")   # strict, eval mode; probe.card

The metadata (format `videojepa.probe/1`) holds the card: the probe's architecture (`AttentiveProbe`
arguments), the encoder layers it reads, the class names, where it came from and the `ClassifierProtocol` it
was trained and is tested with. `videojepa probe` writes one per task (its best attentive cell) and
`videojepa convert` one beside the encoder of a released classifier; `videojepa.classifiers` joins a probe
file with its encoder into a classifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from videojepa.encoder_io import load_state_strict
from videojepa.errors import UserError
from videojepa.eval.probes import AttentiveProbe
from videojepa.utils.files import atomic_path

PROBE_FILE = "probe.safetensors"
PROBE_FORMAT = "videojepa.probe/1"


class ClassifierProtocol(BaseModel):
    """How a classifier reads a video. Clip fields left None come from the encoder card."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    frames: int | None = None
    frame_step: int | None = None
    fps: float | None = None
    crop: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    resize_ratio: float | None = None  # short side resized to crop * this before the views (None: the default)
    num_clips: int = 1  # temporal segments per video, one clip each
    num_views: int = 1  # spatial crops per clip
    joint_clips: bool = True  # a view's clips form one token sequence (probes) or are scored alone (fine-tuned)
    average: Literal["logits", "softmax"] = "logits"  # how the views' (clips') scores are combined

    def with_card(self, card) -> ClassifierProtocol:
        """Unset clip fields filled from an encoder card's clip protocol."""
        if card is None:
            return self
        c = card.clip
        found = {"frames": c.frames, "frame_step": c.frame_step, "fps": c.fps, "crop": c.crop}
        found.update(mean=c.mean, std=c.std)
        update = {k: v for k, v in found.items() if getattr(self, k) is None and v is not None}
        if "frame_step" in update and self.fps is not None:
            update.pop("frame_step")
        return self.model_copy(update=update)


class ProbeCard(BaseModel):
    """Everything besides the weights of a saved probe."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    arch: dict  # `AttentiveProbe` arguments
    layers: list[int] = [-1]  # encoder blocks whose normed outputs, concatenated, the probe reads
    protocol: ClassifierProtocol = ClassifierProtocol()
    classes: list[str] = []
    source: dict | None = None  # {"format": "hf" | "official" | "videojepa", ...}
    encoder: str | None = None  # the encoder it was trained on, when the file is not beside it


def save_probe(probe: nn.Module, path: str | Path, card: ProbeCard) -> None:
    """Write an `AttentiveProbe` and its card (atomically)."""
    from safetensors.torch import save_file

    if card.arch != probe.arch:
        raise ValueError(f"card architecture {card.arch} is not the probe's {probe.arch}")
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in probe.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": PROBE_FORMAT, "card": card.model_dump_json()})


def read_probe_card(path: str | Path) -> ProbeCard:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises several types for a damaged header
        raise UserError(f"{path}: not a readable safetensors file ({err})") from None
    if meta.get("format") != PROBE_FORMAT:
        raise UserError(
            f"{path}: not a videojepa probe file (format {meta.get('format')!r}, expected {PROBE_FORMAT!r})"
        )
    try:
        return ProbeCard.model_validate_json(meta["card"])
    except (ValidationError, KeyError) as err:
        raise UserError(f"{path}: damaged probe card ({str(err).splitlines()[0]})") from None


def load_probe(path: str | Path) -> AttentiveProbe:
    """The probe of a probe file, strictly, in eval mode; `.card` is its `ProbeCard`."""
    from safetensors.torch import load_file

    card = read_probe_card(path)
    try:
        probe = AttentiveProbe(**card.arch)
    except TypeError as err:
        raise UserError(f"{path}: probe architecture {card.arch} cannot be built ({err})") from None
    load_state_strict(probe, load_file(str(path)), str(path))
    probe.card = card
    return probe.eval()


def write_probe_folder(out: Path, probe: nn.Module, card: ProbeCard) -> None:
    """`out`/probe.safetensors (for `videojepa convert` outputs; the encoder is written beside it)."""
    out.mkdir(parents=True, exist_ok=True)
    save_probe(probe, out / PROBE_FILE, card)
