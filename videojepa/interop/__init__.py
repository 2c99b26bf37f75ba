"""Checkpoint interop: load weights trained elsewhere, exactly, and export ours; never unpickle code.

    from videojepa.interop import convert, export
    convert("hf", "facebook/vjepa2-vitl-fpc64-256", "models/vjepa2-vitl")   # or a local save_pretrained folder
    convert("official", "vitl.pt", "models/vjepa2-vitl-official", which="target_encoder")
    convert("videomae", "videomae-base/", "models/videomae-base")
    convert("hf", "facebook/vjepa2-vitl-fpc16-256-ssv2", "models/vjepa2-vitl-ssv2")   # a classifier: + probe
    convert("official-probe", "ssv2-vitl-16x2x3.pt", "models/ssv2-probe", encoder="models/vjepa2-vitl", ...)
    convert("hf", "facebook/dinov2-base", "models/dinov2-base")   # an image model, applied to every frame
    export("models/vjepa2-vitl", "hf-out/", to="hf")   # VJEPA2Model, or VJEPA2ForVideoClassification with a probe

`convert` writes OUT/encoder.safetensors (our self-describing format: its card records the source,
the architecture variant and the clip protocol), OUT/predictor.safetensors when the source has a
predictor, and for a classifier OUT/probe.safetensors (an attentive probe) or OUT/head.safetensors (a
fine-tuned head): `videojepa.load_classifier(OUT)` reads it. OUT is accepted wherever a run directory is
(`probe.checkpoint`, `extract --checkpoint`, `method.teacher.checkpoint`). One module per source format:
`hf_vjepa2`, `hf_classifier`, `image_towers` (all under `--from hf`, chosen by `hf_models` from config.json),
`official`, `official_probe`, `videomae`; `hub` resolves Hub model ids; `state` makes every conversion strict.
A reader returns (encoder, predictor or None, card) and, for a classifier, a writer of its extra file.
"""

from __future__ import annotations

from pathlib import Path

from videojepa.encoder_io import ENCODER_FILE, PREDICTOR_FILE, save_encoder, save_predictor
from videojepa.errors import UserError

SOURCES = ("hf", "official", "official-probe", "videomae")
TARGETS = ("hf",)


def convert(source: str, src: str | Path, out: str | Path, cache_dir: str | Path | None = None, **options) -> Path:
    """Convert `src` (format `source`; a Hub id is looked up in `cache_dir` or the default Hub cache) into the
    folder `out`; options go to the format's reader (official: which, arch, heads, predictor_heads, frames, crop;
    official-probe: encoder, classifier, heads, frames, frame_step, crop, segments, views)."""
    from videojepa.interop.hub import resolve_source

    if source not in SOURCES:
        raise UserError(f"unknown source format {source!r}; available: {', '.join(SOURCES)}")
    path = resolve_source(src, "official" if source == "official-probe" else source, cache_dir)
    out = Path(out)
    if (out / ENCODER_FILE).exists() or (out / "checkpoints").exists():  # before any work
        raise UserError(f"{out} already holds an encoder or a run; choose a new output folder")
    if source == "hf":
        from videojepa.interop.hf_models import from_hf_folder

        encoder, predictor, card, *extra = from_hf_folder(path, **options)
    elif source == "official":
        from videojepa.interop.official import from_official

        encoder, predictor, card, *extra = from_official(path, **options)
    elif source == "official-probe":
        from videojepa.interop.official_probe import from_official_probe

        encoder, predictor, card, *extra = from_official_probe(path, **options)
    else:
        from videojepa.interop.videomae import from_videomae

        encoder, predictor, card, *extra = from_videomae(path, **options)
    save_encoder(encoder, out / ENCODER_FILE, card=card)
    if predictor is not None:
        save_predictor(predictor, out / PREDICTOR_FILE, source=card.source)
    for write in extra:  # a classifier's probe or head
        write(out)
    return out


def export(src: str | Path, out: str | Path, to: str = "hf") -> Path:
    """Write the encoder + predictor folder `src` (a `convert` output or a pretraining run) in format `to`: a
    VJEPA2Model, or a VJEPA2ForVideoClassification when `src` also holds a probe (probe.safetensors)."""
    from videojepa.classifiers import PROBE_FILE, load_probe
    from videojepa.encoder_io import load_encoder, load_predictor
    from videojepa.interop.hf_classifier import to_hf_classifier
    from videojepa.interop.hf_vjepa2 import to_hf

    if to not in TARGETS:
        raise UserError(f"unknown target format {to!r}; available: {', '.join(TARGETS)}")
    src = Path(src)
    if not (src / PREDICTOR_FILE).is_file():
        raise UserError(
            f"{src}: no {PREDICTOR_FILE}: a Hugging Face VJEPA2Model holds an encoder AND a predictor, "
            f"so `--to hf` needs a folder with both (a `videojepa convert` output, or a V-JEPA / SALT "
            f"pretraining run, which saves its predictor beside its encoder)"
        )
    encoder = load_encoder(src)
    clip = encoder.card.clip
    if clip.frames is None or clip.crop is None:
        raise UserError(f"{src}: the encoder card records no clip frames / crop, which HF's config needs")
    if (src / PROBE_FILE).is_file():
        probe = load_probe(src / PROBE_FILE)
        return to_hf_classifier(encoder, load_predictor(src), probe, probe.card, out, clip.frames, clip.crop)
    return to_hf(encoder, load_predictor(src), out, frames=clip.frames, crop=clip.crop)
