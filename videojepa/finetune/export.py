"""A fine-tuned classifier on disk: a folder with the encoder (an ordinary encoder file) and the head.

    save_classifier(folder, encoder, head, card, classes, info)   # folder/encoder.safetensors + head.safetensors
    classifier = load_classifier(folder)                          # .encoder, .head, .classes, .card, .info
    labels = classifier.predict(video)                             # clips or (B, S, ...) views -> class names

`encoder.safetensors` is written by `save_encoder` with its card, so the folder is also what
`videojepa probe` (probe.checkpoint=FOLDER) and `videojepa extract` read. `head.safetensors` holds the
head's weights; its metadata (format `videojepa.classifier-head/1`) holds the head's architecture, the
class names and `info` (step, validation score).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from videojepa.encoder_io import ENCODER_FILE, EncoderCard, load_encoder, load_state_strict, save_encoder
from videojepa.errors import UserError
from videojepa.finetune.evaluate import multiview_logits
from videojepa.finetune.head import ClassifierHead
from videojepa.utils.files import atomic_path

HEAD_FILE = "head.safetensors"
HEAD_FORMAT = "videojepa.classifier-head/1"


def save_classifier(
    folder: str | Path, encoder: nn.Module, head: ClassifierHead, card: EncoderCard, classes: list[str], info: dict
) -> None:
    """Write the encoder (with `card`) and the head into `folder`, each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_encoder(encoder, folder / ENCODER_FILE, card=card)
    save_head(folder, head, classes, info)


def save_head(folder: str | Path, head: ClassifierHead, classes: list[str], info: dict) -> None:
    """`folder`/head.safetensors alone (a converted classifier writes its encoder itself)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in head.state_dict().items()}
    metadata = {
        "format": HEAD_FORMAT,
        "head": json.dumps(head.arch),
        "classes": json.dumps(list(classes)),
        "info": json.dumps(info),
    }
    with atomic_path(folder / HEAD_FILE) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


class Classifier(nn.Module):
    """A loaded fine-tuned classifier (eval mode)."""

    def __init__(self, encoder: nn.Module, head: ClassifierHead, classes: list[str], info: dict):
        super().__init__()
        self.encoder, self.head, self.classes, self.info = encoder, head, classes, info
        self.card = encoder.card

    def logits(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(video))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Logits of clips (B, C, T, H, W), or of videos given as views (B, S, C, T, H, W), averaged over S."""
        return multiview_logits(self.logits, video)

    @torch.no_grad()
    def predict(self, video: torch.Tensor) -> list[str]:
        """Class names of clips (B, C, T, H, W), or of videos given as views (B, S, C, T, H, W)."""
        index = multiview_logits(self.logits, video).argmax(-1)
        names = self.classes or [str(i) for i in range(self.head.arch["num_classes"])]
        return [names[i] for i in index.tolist()]


def load_classifier(folder: str | Path, device: str | torch.device = "cpu") -> Classifier:
    from safetensors import safe_open
    from safetensors.torch import load_file

    folder = Path(folder)
    path = folder / HEAD_FILE
    if not path.is_file():
        raise UserError(
            f"{folder}: no {HEAD_FILE} here; a fine-tuned classifier is a folder such as RUN/best or "
            f"RUN/last written by `videojepa finetune`"
        )
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != HEAD_FORMAT:
        raise UserError(f"{path}: not a classifier head (format {meta.get('format')!r}, expected {HEAD_FORMAT!r})")
    head = ClassifierHead(**json.loads(meta["head"]))
    load_state_strict(head, load_file(str(path)), str(path))
    encoder = load_encoder(folder)
    return Classifier(encoder, head, json.loads(meta["classes"]), json.loads(meta["info"])).to(device).eval()
