"""Checkpoint interop: load weights trained elsewhere, exactly, and export ours; never unpickle code.

    from videojepa.interop import convert, export
    convert("hf", "facebook/vjepa2-vitl-fpc64-256", "models/vjepa2-vitl")   # or a local save_pretrained folder
    convert("official", "vitl.pt", "models/vjepa2-vitl-official", which="target_encoder")
    convert("videomae", "videomae-base/", "models/videomae-base")
    convert("hf", "facebook/vjepa2-vitl-fpc16-256-ssv2", "models/vjepa2-vitl-ssv2")   # a classifier: + probe
    convert("official-probe", "ssv2-vitl-16x2x3.pt", "models/ssv2-probe", encoder="models/vjepa2-vitl", ...)
    convert("hf", "facebook/dinov2-base", "models/dinov2-base")   # an image model, applied to every frame
    export("models/vjepa2-vitl", "hf-out/", to="hf")   # VJEPA2Model, or VJEPA2ForVideoClassification with a probe

Formats are registered (`registry`: `@register_source` / `@register_target`, one class each, from anywhere).
`convert` writes OUT/encoder.safetensors (our self-describing format: its card records the source,
the architecture variant and the clip protocol), OUT/predictor.safetensors when the source has a
predictor, and for a classifier OUT/probe.safetensors (an attentive probe) or OUT/head.safetensors (a
fine-tuned head): `videojepa.load_classifier(OUT)` reads it. OUT is accepted wherever a run directory is
(`probe.checkpoint`, `extract --checkpoint`, `method.teacher.checkpoint`). One module per built-in format:
`hf_models` (the `hf` source and target: `hf_vjepa2`, `hf_classifier`, `image_towers` and `videomae`, chosen
from config.json), `official`, `official_probe`, `videomae`; `hub` resolves Hub model ids; `state` makes every
conversion strict. A reader returns (encoder, predictor or None, card) and, for a classifier, a writer of its
extra file.
"""

from __future__ import annotations

from pathlib import Path

from videojepa.encoder_io import ENCODER_FILE, PREDICTOR_FILE, save_encoder, save_predictor
from videojepa.errors import UserError

# the built-in formats register themselves: hf (source and target), official, official-probe, videomae
from videojepa.interop import hf_models, official, official_probe, videomae  # noqa: F401
from videojepa.interop.hub import resolve_source
from videojepa.interop.registry import (
    CheckpointSource,
    CheckpointTarget,
    get_source,
    get_target,
    list_sources,
    list_targets,
    register_source,
    register_target,
)

__all__ = [
    "convert",
    "export",
    "CheckpointSource",
    "CheckpointTarget",
    "register_source",
    "register_target",
    "list_sources",
    "list_targets",
]


def convert(source: str, src: str | Path, out: str | Path, cache_dir: str | Path | None = None, **options) -> Path:
    """Convert `src` (format `source`, a registered `CheckpointSource`; a Hub id is looked up in `cache_dir` or the
    default Hub cache) into the folder `out`; options go to the format's reader (official: which, arch, heads,
    predictor_heads, frames, crop; official-probe: encoder, classifier, heads, frames, frame_step, crop, segments,
    views)."""
    reader = get_source(source)
    path = resolve_source(src, reader.hub, cache_dir)
    out = Path(out)
    if (out / ENCODER_FILE).exists() or (out / "checkpoints").exists():  # before any work
        raise UserError(f"{out} already holds an encoder or a run; choose a new output folder")
    encoder, predictor, card, *extra = reader.read(path, **options)
    save_encoder(encoder, out / ENCODER_FILE, card=card)
    if predictor is not None:
        save_predictor(predictor, out / PREDICTOR_FILE, source=card.source)
    for write in extra:  # a classifier's probe or head
        write(out)
    return out


def export(src: str | Path, out: str | Path, to: str = "hf") -> Path:
    """Write the encoder folder `src` (a `convert` output or a pretraining run) in format `to` (a registered
    `CheckpointTarget`; hf: a VJEPA2Model, or a VJEPA2ForVideoClassification when `src` also holds a probe)."""
    return get_target(to).write(Path(src), Path(out))
