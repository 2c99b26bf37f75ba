"""Which reader converts a Hugging Face folder, from its config.json (`architectures`, `model_type`).

    encoder, predictor, card, *extra = from_hf_folder("models/hf/vjepa2-vitl-fpc16-256-ssv2")

`--from hf` reads every Hugging Face model this project converts: V-JEPA 2 (`hf_vjepa2`, and with its
attentive probe `hf_classifier`), VideoMAE (`videomae`, with a fine-tuned head when it is a classifier)
and the image towers (`image_towers`). Any other architecture is refused with one line saying what it is
and what to do, before a tensor is read.
"""

from __future__ import annotations

import json
from pathlib import Path

from videojepa.errors import UserError

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
        from videojepa.interop.hf_vjepa2 import from_hf

        return from_hf(folder)
    if arch == "VJEPA2ForVideoClassification":
        from videojepa.interop.hf_classifier import from_hf_classifier

        return from_hf_classifier(folder)
    if arch in VIDEO:
        from videojepa.interop.videomae import from_videomae

        return from_videomae(folder)
    if arch in TOWERS and TOWERS[arch] == model_type:
        from videojepa.interop.image_towers import from_hf_tower

        return from_hf_tower(folder)
    raise unsupported(folder, arch, model_type)
