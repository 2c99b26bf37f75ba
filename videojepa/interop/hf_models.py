"""The `hf` checkpoint format, both ways: which reader converts a Hugging Face folder, from its config.json
(`architectures`, `model_type`), and which writer exports ours.

    encoder, predictor, card, *extra = from_hf_folder("models/hf/vjepa2-vitl-fpc16-256-ssv2")
    export_hf("models/vjepa2-vitl-ssv2", "hf-out/")   # VJEPA2Model, or VJEPA2ForVideoClassification with a probe

`--from hf` reads every Hugging Face model this project converts: V-JEPA 2 (`hf_vjepa2`, and with its
attentive probe `hf_classifier`), VideoMAE (`videomae`, with a fine-tuned head when it is a classifier)
and the image towers (`image_towers`). Any other architecture is refused with one line saying what it is
and what to do, before a tensor is read. `--to hf` writes an encoder + predictor folder as a VJEPA2Model, and
one that also holds a probe (probe.safetensors) as a VJEPA2ForVideoClassification. Both are registered here
(`HuggingFace`, `HuggingFaceExport`).
"""

from __future__ import annotations

import json
from pathlib import Path

from videojepa.encoder_io import PREDICTOR_FILE, load_encoder, load_predictor
from videojepa.errors import UserError
from videojepa.eval.probe_file import PROBE_FILE, load_probe
from videojepa.interop.hf_classifier import from_hf_classifier, to_hf_classifier
from videojepa.interop.hf_vjepa2 import from_hf, to_hf
from videojepa.interop.image_towers import from_hf_tower
from videojepa.interop.registry import CheckpointSource, CheckpointTarget, register_source, register_target
from videojepa.interop.videomae import from_videomae

VIDEO = {
    "VJEPA2Model": "the V-JEPA 2 encoder and predictor",
    "VJEPA2ForVideoClassification": "the encoder, predictor and attentive probe (a classifier)",
    "VideoMAEModel": "the encoder",
    "VideoMAEForPreTraining": "the encoder (the pixel decoder is dropped)",
    "VideoMAEForVideoClassification": "the encoder and its fine-tuned head (a classifier)",
}
TOWERS = {
    "Dinov2Model": "dinov2",
    "Dinov2WithRegistersModel": "dinov2_with_registers",
    "CLIPVisionModel": "clip_vision_model",
    "CLIPModel": "clip",
    "SiglipVisionModel": "siglip_vision_model",
    "SiglipModel": "siglip",
}
# model types whose base model converts: a task model of theirs can be saved as that base model first
BASES = {
    "vjepa2": "VJEPA2Model",
    "videomae": "VideoMAEModel",
    "dinov2": "Dinov2Model",
    "dinov2_with_registers": "Dinov2WithRegistersModel",
    "clip": "CLIPVisionModel",
    "clip_vision_model": "CLIPVisionModel",
    "siglip": "SiglipVisionModel",
    "siglip_vision_model": "SiglipVisionModel",
}


def architecture(folder: Path) -> tuple[str | None, str | None]:
    """(the first of config.json's `architectures`, `model_type`); (None, None) without a config.json."""
    path = folder / "config.json"
    if not path.is_file():
        return None, None
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    names = config.get("architectures") or []
    return (names[0] if names else None), config.get("model_type")


def supported() -> str:
    return ", ".join([*VIDEO, *TOWERS])


def unsupported(folder: Path, arch: str | None, model_type: str | None) -> UserError:
    """What to tell a user whose folder holds a model this project does not convert."""
    what = f"a Hugging Face {arch or 'model'} (model_type {model_type!r})"
    base = BASES.get(model_type or "")
    if base and arch != base:
        todo = (
            f"its {base} part converts: save it on its own (e.g. `model.base_model.save_pretrained(DIR)`) and "
            f"convert DIR"
        )
    else:
        todo = "this project does not read it"
    return UserError(
        f"{folder}: {what}, which `convert --from hf` does not convert; {todo}. It converts: {supported()}"
    )


def from_hf_folder(folder: str | Path):
    """The reader's result for a save_pretrained folder / Hub snapshot of any supported model."""
    folder = Path(folder)
    arch, model_type = architecture(folder)
    if model_type is None:
        raise UserError(f"{folder}: no config.json with a model_type (expected a folder written by save_pretrained)")
    if arch is None:  # older configs may lack `architectures`: the base model of the type
        arch = BASES.get(model_type)
    if arch in ("VJEPA2Model",):
        return from_hf(folder)
    if arch == "VJEPA2ForVideoClassification":
        return from_hf_classifier(folder)
    if arch in VIDEO:
        return from_videomae(folder)
    if arch in TOWERS and TOWERS[arch] == model_type:
        return from_hf_tower(folder)
    raise unsupported(folder, arch, model_type)


def export_hf(folder: Path, out: Path) -> Path:
    """Write the encoder + predictor folder `folder` (a `convert` output or a V-JEPA / SALT pretraining run) as a
    VJEPA2Model, or as a VJEPA2ForVideoClassification when it also holds a probe (probe.safetensors)."""
    if not (folder / PREDICTOR_FILE).is_file():
        raise UserError(
            f"{folder}: no {PREDICTOR_FILE}: a Hugging Face VJEPA2Model holds an encoder AND a predictor, "
            f"so `--to hf` needs a folder with both (a `videojepa convert` output, or a V-JEPA / SALT "
            f"pretraining run, which saves its predictor beside its encoder)"
        )
    encoder = load_encoder(folder)
    clip = encoder.card.clip
    if clip.frames is None or clip.crop is None:
        raise UserError(f"{folder}: the encoder card records no clip frames / crop, which HF's config needs")
    if (folder / PROBE_FILE).is_file():
        probe = load_probe(folder / PROBE_FILE)
        return to_hf_classifier(encoder, load_predictor(folder), probe, probe.card, out, clip.frames, clip.crop)
    return to_hf(encoder, load_predictor(folder), out, frames=clip.frames, crop=clip.crop)


@register_source
class HuggingFace(CheckpointSource):
    name = "hf"
    description = (
        "a save_pretrained folder or Hub id of VJEPA2Model, VJEPA2ForVideoClassification (+ its probe), VideoMAE* "
        "(a classifier: + its head), or an image model applied to every frame (Dinov2Model, "
        "Dinov2WithRegistersModel, CLIPVisionModel / CLIPModel, SiglipVisionModel / SiglipModel)"
    )
    hub = True

    def read(self, path: Path, **options):
        return from_hf_folder(path, **options)


@register_target
class HuggingFaceExport(CheckpointTarget):
    name = "hf"
    description = (
        "a folder that transformers' VJEPA2Model.from_pretrained loads (encoder and predictor), or "
        "VJEPA2ForVideoClassification when the folder holds a probe"
    )

    def write(self, folder: Path, out: Path) -> Path:
        return export_hf(folder, out)
