"""Video classifiers: a frozen encoder with an attentive probe, or a fine-tuned encoder with its head.

    model = load_classifier("models/vjepa2-vitl-ssv2")   # a `convert` output, a probe file, or RUN/best of finetune
    logits = model(clips)                                 # (B, C, T, H, W) -> (B, classes)
    logits = model(views)                                 # (B, K*V, C, T, H, W): the protocol's clips x views
    model.protocol, model.classes, model.card

A probe on disk is `probe.safetensors` (`videojepa.eval.probe_file`, re-exported here: the `AttentiveProbe`'s
weights and its `ProbeCard`: architecture, encoder layers read, class names, source and the
`ClassifierProtocol` it was trained and is tested with). A folder holding `encoder.safetensors` and
`probe.safetensors` (what `videojepa convert` writes for a Hugging Face `VJEPA2ForVideoClassification` or an
official V-JEPA 2 probe) is a classifier; so is a fine-tuned folder (`encoder.safetensors` +
`head.safetensors`, `videojepa.finetune.export`). This module sits above `eval` and `finetune` (it reads
both kinds of head); the probe file format lives in `eval`, where `videojepa probe` writes it.

The protocol says how a video becomes logits: K clips (temporal segments) x V views (spatial crops). A probe
reads a view's K clips as ONE token sequence (their tokens concatenated, V-JEPA's multi-clip probe); a
fine-tuned head scores every clip on its own. The views' (or clips') scores are then averaged, as logits or
as probabilities (`average="softmax"`, the official V-JEPA 2 evaluation); the module returns the log of the
averaged probabilities then, so its output is logits either way (same argmax, same top-k).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from videojepa.encoder_io import ENCODER_FILE, load_encoder
from videojepa.errors import UserError
from videojepa.eval.probe_file import (
    PROBE_FILE,
    PROBE_FORMAT,
    ClassifierProtocol,
    ProbeCard,
    load_probe,
    read_probe_card,
    save_probe,
    write_probe_folder,
)
from videojepa.eval.protocol import per_view
from videojepa.finetune.export import HEAD_FILE
from videojepa.finetune.export import load_classifier as load_finetuned

__all__ = [
    "PROBE_FILE",
    "PROBE_FORMAT",
    "ClassifierProtocol",
    "ProbeCard",
    "VideoClassifier",
    "describe",
    "load_classifier",
    "load_probe",
    "read_probe_card",
    "save_probe",
    "write_probe_folder",
]


class VideoClassifier(nn.Module):
    """An encoder and a head (tokens -> logits) read through a `ClassifierProtocol`; see the module docstring."""

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        protocol: ClassifierProtocol,
        classes: list[str] | None = None,
        layers: list[int] | None = None,
        source: dict | None = None,
    ):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.protocol = protocol.with_card(getattr(encoder, "card", None))
        self.layers = list(layers or [-1])
        self.classes, self.source = list(classes or []), source
        self.card = getattr(encoder, "card", None)

    @property
    def num_classes(self) -> int:
        return self.head.arch["num_classes"]  # an AttentiveProbe's or a fine-tuned ClassifierHead's

    def tokens(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) -> (N, tokens, D * layers): the normed outputs of the chosen blocks, concatenated."""
        outs = self.encoder(clips, layers=self.layers)
        return torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) one clip per video, or (B, K*V, C, T, H, W) clip-major (element k*V + v is view v of
        clip k, as the datasets give it) -> (B, classes) logits."""
        if video.ndim == 5:
            video = video[:, None]
        if video.ndim != 6:
            raise ValueError(f"expected clips (B, C, T, H, W) or views (B, S, C, T, H, W), got {tuple(video.shape)}")
        B, S = video.shape[:2]
        K, V = self.protocol.num_clips, self.protocol.num_views
        tokens = self.tokens(video.flatten(0, 1))
        if not self.protocol.joint_clips:  # every clip scored alone, however many
            scores = self.head(tokens).unflatten(0, (B, S))
        else:
            if S == 1:
                K = V = 1
            elif S != K * V:
                raise ValueError(f"{S} clips per video, but the protocol takes {K} clips x {V} views")
            scores = self.head(per_view(tokens.unflatten(0, (B, S)), K, V)).unflatten(0, (B, V))
        scores = scores.float()
        if scores.shape[1] == 1:
            return scores[:, 0]
        if self.protocol.average == "softmax":
            return scores.softmax(-1).mean(1).log()
        return scores.mean(1)


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> VideoClassifier:
    """A classifier from `path`: a folder with encoder.safetensors and probe.safetensors (a `videojepa convert`
    output), a probe file (its encoder: the file beside it, else the one its card names), or a fine-tuned
    folder (`videojepa finetune`'s RUN/best or RUN/last: encoder.safetensors + head.safetensors)."""
    path = Path(path)
    if path.is_dir() and (path / HEAD_FILE).is_file():
        return _finetuned(path).to(device).eval()
    probe_path = path / PROBE_FILE if path.is_dir() else path
    if not probe_path.is_file():
        what = "no such file or folder" if not path.exists() else f"neither {PROBE_FILE} nor {HEAD_FILE} here"
        raise UserError(
            f"{path}: {what}; a classifier is a `videojepa convert` output of a released classifier "
            f"(encoder + probe), a probe file, or a `videojepa finetune` RUN/best folder"
        )
    probe = load_probe(probe_path)
    card = probe.card
    encoder_path = probe_path.parent / ENCODER_FILE
    if not encoder_path.is_file():
        if card.encoder is None:
            raise UserError(f"{probe_path}: no {ENCODER_FILE} beside it and its card names no encoder")
        encoder_path = Path(card.encoder)
    encoder = load_encoder(encoder_path)
    width = encoder.embed_dim * len(card.layers)
    if card.arch["dim"] != width:
        raise UserError(
            f"{probe_path}: the probe reads features of width {card.arch['dim']}, but the encoder {encoder_path} "
            f"gives {width} ({len(card.layers)} layer(s) of {encoder.embed_dim})"
        )
    model = VideoClassifier(encoder, probe, card.protocol, card.classes, card.layers, card.source)
    return model.to(device).eval()


def _finetuned(folder: Path) -> VideoClassifier:
    """A `videojepa finetune` output folder as a `VideoClassifier` (every clip scored alone, logits averaged)."""
    tuned = load_finetuned(folder)
    stored = tuned.info.get("protocol") or {}
    protocol = ClassifierProtocol(**{**stored, "joint_clips": False})
    source = tuned.info.get("source") or {"format": "videojepa finetune", "path": str(folder.resolve())}
    return VideoClassifier(tuned.encoder, tuned.head, protocol, tuned.classes, source=source)


def describe(model: VideoClassifier) -> dict:
    """A JSON-able description of a classifier (for reports)."""
    return {
        "head": type(model.head).__name__,
        "num_classes": model.num_classes,
        "layers": model.layers,
        "protocol": json.loads(model.protocol.model_dump_json()),
        "source": model.source,
    }
