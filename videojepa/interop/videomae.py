"""Hugging Face VideoMAE folders (`VideoMAEModel`, `VideoMAEForPreTraining`, `VideoMAEForVideoClassification`)
-> our encoder.

Layout differences handled (HF name under an optional `videomae.` prefix -> ours):
  embeddings.patch_embeddings.projection           -> patch_embed
  encoder.layer.i.attention.attention.{query,key,value}.weight -> blocks.i.attn.qkv.weight (fused q, k, v)
  ...q_bias, ...v_bias (or query.bias, value.bias; no key bias) -> blocks.i.attn.q_bias, v_bias (`k_bias=False`)
  attention.output.dense / intermediate.dense / output.dense -> attn.proj / mlp.fc1 / mlp.fc2
  layernorm_before / layernorm_after               -> norm1 / norm2   (eps from config, 1e-12 by default)
  layernorm (only when use_mean_pooling=false)     -> norm; otherwise the encoder has no final norm
Positions are VideoMAE's fixed 1-D sin-cos table over the flat token index (`pos_embed="sincos_1d"`),
not a learned tensor. The pixel decoder of a pre-training checkpoint is not part of the encoder: it is
dropped by name and listed in the card's source, never silently. The classifier of a fine-tuned
`VideoMAEForVideoClassification` becomes a fine-tuned head beside the encoder (OUT/head.safetensors, what
`videojepa finetune` writes): HF's mean of the tokens -> `fc_norm` (a LayerNorm with torch's default eps
1e-5, not the config's) -> `classifier` is our linear `ClassifierHead` with `norm_eps=1e-5`. The class
names are the config's `id2label`; the protocol recorded is one clip (`num_frames` at `image_size`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from videojepa.data.config import IMAGENET_MEAN, IMAGENET_STD
from videojepa.encoder_io import ClipProtocol, EncoderCard, load_state_strict
from videojepa.errors import UserError
from videojepa.finetune.export import save_head
from videojepa.finetune.head import ClassifierHead
from videojepa.interop.hf_vjepa2 import WEIGHTS, read_folder
from videojepa.interop.registry import CheckpointSource, register_source
from videojepa.interop.state import SourceState
from videojepa.models.registry import encoder_from_arch

NOT_ENCODER = ("decoder.", "encoder_to_decoder.", "mask_token")
HEAD_TENSORS = ("fc_norm.", "classifier.")
FC_NORM_EPS = 1e-5  # VideoMAEForVideoClassification builds fc_norm as nn.LayerNorm(hidden_size)


def from_videomae(folder: str | Path):
    folder = Path(folder)
    config, tensors = read_folder(folder, "videomae")
    c = config.get
    dim, depth, heads, hidden = (
        c("hidden_size", 768),
        c("num_hidden_layers", 12),
        c("num_attention_heads", 12),
        c("intermediate_size", 3072),
    )
    patch, tubelet, chans, crop = c("patch_size", 16), c("tubelet_size", 2), c("num_channels", 3), c("image_size", 224)
    if not isinstance(patch, int) or not isinstance(crop, int):
        raise UserError(
            f"{folder}/config.json: patch_size {patch!r} / image_size {crop!r}: only square sizes are supported"
        )
    if c("hidden_act", "gelu") != "gelu":
        raise UserError(f"{folder}/config.json: hidden_act {c('hidden_act')!r}: only gelu is supported")
    qv_bias = c("qv_bias", c("qkv_bias", True))
    mean_pooling = c("use_mean_pooling", True)
    encoder = encoder_from_arch(
        dict(
            embed_dim=dim,
            depth=depth,
            num_heads=heads,
            mlp_hidden=hidden,
            patch_size=patch,
            tubelet_size=tubelet,
            in_chans=chans,
            pos_embed="sincos_1d",
            qkv_bias=qv_bias,
            k_bias=not qv_bias,
            final_norm=not mean_pooling,
            norm_eps=c("layer_norm_eps", 1e-12),
            name=None,
        )
    )
    prefix = "videomae." if any(k.startswith("videomae.") for k in tensors) else ""
    src = SourceState(tensors, str(folder / WEIGHTS))
    dropped = [name for part in NOT_ENCODER for name in src.skip(part)]
    head_state = {k: src.tensors[k] for k in src.tensors if k.startswith(HEAD_TENSORS)}
    src.used.update(head_state)  # read below by `_head`, strictly
    state = {
        "patch_embed.weight": src.take(
            f"{prefix}embeddings.patch_embeddings.projection.weight", (dim, chans, tubelet, patch, patch)
        ),
        "patch_embed.bias": src.take(f"{prefix}embeddings.patch_embeddings.projection.bias", (dim,)),
    }
    if not mean_pooling:
        state["norm.weight"] = src.take(f"{prefix}layernorm.weight", (dim,))
        state["norm.bias"] = src.take(f"{prefix}layernorm.bias", (dim,))
    for i in range(depth):
        hf, ours = f"{prefix}encoder.layer.{i}", f"blocks.{i}"
        parts = [src.take(f"{hf}.attention.attention.{p}.weight", (dim, dim)) for p in ("query", "key", "value")]
        state[f"{ours}.attn.qkv.weight"] = None if any(p is None for p in parts) else torch.cat(parts)
        if qv_bias:  # files on the Hub (and save_pretrained) say q_bias / v_bias, the loaded module query.bias
            for short, long, name in (("q_bias", "query.bias", "q_bias"), ("v_bias", "value.bias", "v_bias")):
                key = f"{hf}.attention.attention.{short}"
                state[f"{ours}.attn.{name}"] = src.take(
                    key if src.has(key) else f"{hf}.attention.attention.{long}", (dim,)
                )
        for hf_name, our_name, shape in (
            ("attention.output.dense", "attn.proj", (dim, dim)),
            ("intermediate.dense", "mlp.fc1", (hidden, dim)),
            ("output.dense", "mlp.fc2", (dim, hidden)),
            ("layernorm_before", "norm1", (dim,)),
            ("layernorm_after", "norm2", (dim,)),
        ):
            state[f"{ours}.{our_name}.weight"] = src.take(f"{hf}.{hf_name}.weight", shape)
            state[f"{ours}.{our_name}.bias"] = src.take(f"{hf}.{hf_name}.bias", (shape[0],))
    src.finish()
    load_state_strict(encoder, state, str(folder))
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    processor = folder / "preprocessor_config.json"
    if processor.is_file():
        settings = json.loads(processor.read_text())
        mean, std = tuple(settings.get("image_mean", mean)), tuple(settings.get("image_std", std))
    source = {
        "format": "videomae",
        "path": str(folder.resolve()),
        "model_type": "videomae",
        "architectures": c("architectures"),
        "dropped": sorted({d.split(".")[0] for d in dropped}),
        "dropped_tensors": len(dropped),
    }
    card = EncoderCard.describe(
        encoder,
        clip=ClipProtocol(frames=c("num_frames", 16), crop=crop, mean=mean, std=std),
        method="videomae",
        source=source,
    )
    if not head_state:
        return encoder.eval(), None, card
    write_head = _head(folder, config, head_state, dim, mean_pooling, source)
    return encoder.eval(), None, card, write_head


def _head(folder: Path, config: dict, tensors: dict, dim: int, mean_pooling: bool, source: dict):
    """The writer of OUT/head.safetensors for the fine-tuned classifier of a VideoMAEForVideoClassification."""
    if not mean_pooling:
        raise UserError(
            f"{folder}/config.json: use_mean_pooling=false: this classifier reads the first token after a "
            "final norm, which is not supported (fine-tuned VideoMAE classifiers mean-pool)"
        )
    src = SourceState(tensors, str(folder / WEIGHTS))
    weight = tensors.get("classifier.weight")
    num_classes = weight.shape[0] if weight is not None else 0
    head = ClassifierHead("linear", dim, num_classes, norm_eps=FC_NORM_EPS)
    state = {
        "norm.weight": src.take("fc_norm.weight", (dim,)),
        "norm.bias": src.take("fc_norm.bias", (dim,)),
        "probe.head.1.weight": src.take("classifier.weight", (num_classes, dim)),
        "probe.head.1.bias": src.take("classifier.bias", (num_classes,)),
    }
    src.finish()
    load_state_strict(head, state, str(folder / WEIGHTS))
    labels = {int(k): v for k, v in (config.get("id2label") or {}).items()}
    classes = [labels.get(i, str(i)) for i in range(num_classes)]
    protocol = {"num_clips": 1, "num_views": 1, "joint_clips": False, "average": "logits"}
    info = {"source": {**source, "head": "fc_norm + classifier"}, "protocol": protocol}
    return lambda out: save_head(out, head.eval(), classes, info)


@register_source
class VideoMAE(CheckpointSource):
    name = "videomae"
    description = "a VideoMAEModel / VideoMAEForPreTraining / VideoMAEForVideoClassification folder or Hub id"
    hub = True

    def read(self, path: Path, **options):
        return from_videomae(path, **options)
