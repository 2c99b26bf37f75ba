"""Checkpoint interop: load weights trained elsewhere, exactly, and export ours; never unpickle code.

    from videojepa.interop import convert, export
    convert("hf", "facebook/vjepa2-vitl-fpc64-256", "models/vjepa2-vitl")   # or a local save_pretrained folder
    convert("official", "vitl.pt", "models/vjepa2-vitl-official", which="target_encoder")
    convert("videomae", "videomae-base/", "models/videomae-base")
    export("models/vjepa2-vitl", "hf-out/", to="hf")

`convert` writes OUT/encoder.safetensors (our self-describing format: its card records the source,
the architecture variant and the clip protocol) and OUT/predictor.safetensors when the source has a
predictor. OUT is accepted wherever a run directory is (`probe.checkpoint`, `extract --checkpoint`,
`method.teacher.checkpoint`). One module per source format: `hf_vjepa2`, `official`, `videomae`;
`hub` resolves Hub model ids; `state` makes every conversion strict.
"""

from __future__ import annotations

from pathlib import Path

from videojepa.encoder_io import (
    ENCODER_FILE,
    PREDICTOR_FILE,
    load_encoder,
    load_predictor,
    save_encoder,
    save_predictor,
)
from videojepa.errors import UserError
from videojepa.interop.hf_vjepa2 import from_hf, to_hf
from videojepa.interop.hub import resolve_source
from videojepa.interop.official import from_official
from videojepa.interop.videomae import from_videomae

SOURCES = ("hf", "official", "videomae")
TARGETS = ("hf",)


def convert(source: str, src: str | Path, out: str | Path, cache_dir: str | Path | None = None, **options) -> Path:
    """Convert `src` (format `source`; a Hub id is looked up in `cache_dir` or the default Hub cache) into the
    folder `out`; options go to the format's reader (official: which, arch, heads, predictor_heads, frames, crop)."""
    if source not in SOURCES:
        raise UserError(f"unknown source format {source!r}; available: {', '.join(SOURCES)}")
    path = resolve_source(src, source, cache_dir)
    if source == "hf":
        encoder, predictor, card = from_hf(path, **options)
    elif source == "official":
        encoder, predictor, card = from_official(path, **options)
    else:
        encoder, predictor, card = from_videomae(path, **options)
    out = Path(out)
    if (out / ENCODER_FILE).exists() or (out / "checkpoints").exists():
        raise UserError(f"{out} already holds an encoder or a run; choose a new output folder")
    save_encoder(encoder, out / ENCODER_FILE, card=card)
    if predictor is not None:
        save_predictor(predictor, out / PREDICTOR_FILE, source=card.source)
    return out


def export(src: str | Path, out: str | Path, to: str = "hf") -> Path:
    """Write the encoder + predictor folder `src` (a `convert` output) in format `to`."""
    if to not in TARGETS:
        raise UserError(f"unknown target format {to!r}; available: {', '.join(TARGETS)}")
    src = Path(src)
    if not (src / PREDICTOR_FILE).is_file():
        raise UserError(
            f"{src}: no {PREDICTOR_FILE}: a Hugging Face VJEPA2Model holds an encoder AND a predictor, "
            f"so `--to hf` needs a folder with both (a `videojepa convert` output)"
        )
    encoder = load_encoder(src)
    clip = encoder.card.clip
    if clip.frames is None or clip.crop is None:
        raise UserError(f"{src}: the encoder card records no clip frames / crop, which HF's config needs")
    return to_hf(encoder, load_predictor(src), out, frames=clip.frames, crop=clip.crop)
