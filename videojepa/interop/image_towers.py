"""Hugging Face image towers -> a `FrameEncoder` (an image model applied to every frame of a clip).

    encoder, _, card = from_hf_tower("models/hf/dinov2-base")
    # Dinov2Model, Dinov2WithRegistersModel, CLIPVisionModel / CLIPModel, SiglipVisionModel / SiglipModel

The encoder's output per frame is the tower's `last_hidden_state` without its class and register tokens: the
patch tokens after the norm `transformers` applies to them, which differs per tower (read from its code,
5.23): DINOv2 applies `layernorm`, SigLIP `post_layernorm`; CLIP applies none (its `post_layernorm` only
normalises the pooled class token, so it is dropped here). The card's source names the dropped tokens, the
dropped tensors (DINOv2's unused mask token, SigLIP's attention-pooling head, a CLIP/SigLIP model's text
tower) and the norm applied. Frames are encoded on their own and their token maps concatenated in time
order (V-JEPA appendix B.1). Names are those of the files on the Hub and of `save_pretrained` (transformers
5 renames some in memory, e.g. DINOv2's `attention.attention.query` -> `attention.q_proj`, and writes the
Hub names back).

Layout (HF name -> ours):
  DINOv2  embeddings.patch_embeddings.projection -> patch_embed.proj; embeddings.cls_token / position_embeddings
          / register_tokens -> patch_embed.cls_token / pos_table / registers; encoder.layer.i.attention.attention.
          {query,key,value} -> blocks.i.attn.qkv (fused); attention.output.dense -> attn.proj; layer_scale1/2.lambda1
          -> ls1/ls2.gamma; mlp.fc1/fc2 (or SwiGLU mlp.weights_in/weights_out) -> mlp.fc1/fc2; layernorm -> norm
  CLIP    [vision_model.]embeddings.patch_embedding (no bias) / class_embedding (D,) / position_embedding.weight
          -> patch_embed.proj / cls_token / pos_table; pre_layrnorm -> pre_norm; encoder.layers.i.layer_norm1/2 ->
          norm1/2; self_attn.{q,k,v}_proj -> attn.qkv; self_attn.out_proj -> attn.proj; mlp.fc1/fc2
  SigLIP  as CLIP without class token and pre-norm, with a patch bias; post_layernorm -> norm
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from videojepa.data.config import IMAGENET_MEAN, IMAGENET_STD
from videojepa.encoder_io import ClipProtocol, EncoderCard, load_state_strict
from videojepa.errors import UserError
from videojepa.interop.hf_vjepa2 import WEIGHTS
from videojepa.interop.state import SourceState, summarize
from videojepa.models.frames import FrameEncoder

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)
ACTIVATIONS = {"gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh", "quick_gelu": "quick_gelu"}
# model_type -> tower family; the full CLIP / SigLIP models hold their vision tower under `vision_model.`
TOWERS = {
    "dinov2": "dinov2",
    "dinov2_with_registers": "dinov2",
    "clip_vision_model": "clip",
    "clip": "clip",
    "siglip_vision_model": "siglip",
    "siglip": "siglip",
}
# what a full CLIP / SigLIP model holds besides its vision tower (dropped by name)
OTHER_TOWER = ("text_model.", "visual_projection.", "text_projection.", "logit_scale", "logit_bias")
DEFAULT_NORM = {"dinov2": (IMAGENET_MEAN, IMAGENET_STD), "clip": (CLIP_MEAN, CLIP_STD), "siglip": (HALF, HALF)}


def from_hf_tower(folder: str | Path):
    """(encoder, None, card) from a `save_pretrained` folder (or Hub snapshot) of a supported image tower."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    model_type = config.get("model_type")
    if model_type not in TOWERS:
        raise UserError(f"{folder}/config.json: model_type {model_type!r} is not an image tower this project reads")
    if not (folder / WEIGHTS).is_file():
        raise UserError(f"{folder}: no {WEIGHTS} (sharded or .bin checkpoints are not supported)")
    family = TOWERS[model_type]
    vision = config.get("vision_config", {}) if model_type in ("clip", "siglip") else config
    tensors = load_file(str(folder / WEIGHTS))
    src = SourceState(tensors, str(folder / WEIGHTS))
    dropped = []
    if any(k.startswith("vision_model.") for k in tensors):  # a full CLIP / SigLIP model, or an older vision file
        dropped += [k for k in sorted(tensors) if k.startswith(OTHER_TOWER)]
        unknown = [k for k in sorted(tensors) if not k.startswith(("vision_model.", *OTHER_TOWER))]
        if unknown:
            raise UserError(f"{folder / WEIGHTS}: cannot convert ({summarize('unexpected', unknown)})")
        src = SourceState(
            {k[len("vision_model.") :]: v for k, v in tensors.items() if k.startswith("vision_model.")},
            str(folder / WEIGHTS),
            prefix="vision_model.",
        )
    read = _dinov2 if family == "dinov2" else _clip_like
    arch, state, dropped_here, norm_name = read(src, vision, family, model_type)
    dropped += dropped_here
    src.finish()
    encoder = FrameEncoder(**arch)
    load_state_strict(encoder, state, str(folder / WEIGHTS))
    mean, std = DEFAULT_NORM[family]
    crop = arch["image_size"]
    processor = folder / "preprocessor_config.json"
    if processor.is_file():
        settings = json.loads(processor.read_text())
        mean, std = tuple(settings.get("image_mean", mean)), tuple(settings.get("image_std", std))
        size = settings.get("crop_size") or settings.get("size") or {}
        crop = size.get("height", crop) if isinstance(size, dict) else size
    tokens = (["class"] if arch["class_token"] else []) + (
        [f"{arch['registers']} registers"] if arch["registers"] else []
    )
    source = {
        "format": "hf",
        "path": str(folder.resolve()),
        "model_type": model_type,
        "architectures": config.get("architectures"),
        "output": f"patch tokens of every frame after {norm_name}, concatenated in time order",
        "dropped_tokens": tokens,
        "dropped": sorted({_group(d) for d in dropped}),
        "dropped_tensors": len(dropped),
    }
    card = EncoderCard.describe(encoder, clip=ClipProtocol(crop=crop, mean=mean, std=std), method=family, source=source)
    return encoder.eval(), None, card


def _group(name: str) -> str:
    """A dropped tensor's group for the card: `text_model`, `head`, `embeddings.mask_token`, ..."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] in ("embeddings", "vision_model") else parts[0]


def _activation(value: str, family: str) -> str:
    if value not in ACTIVATIONS:
        raise UserError(f"{family} config: hidden_act {value!r} is not supported ({', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[value]


def _square(value, key: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise UserError(f"config {key} {value}: only square sizes are supported")
        value = value[0]
    return int(value)


def _fused_qkv(src: SourceState, names: list[str], dim: int, bias: bool) -> tuple:
    weights = [src.take(f"{n}.weight", (dim, dim)) for n in names]
    w = None if any(t is None for t in weights) else torch.cat(weights)
    if not bias:
        return w, None
    biases = [src.take(f"{n}.bias", (dim,)) for n in names]
    return w, None if any(t is None for t in biases) else torch.cat(biases)


def _norm(state: dict, src: SourceState, hf: str, ours: str, dim: int) -> None:
    state[f"{ours}.weight"], state[f"{ours}.bias"] = src.take(f"{hf}.weight", (dim,)), src.take(f"{hf}.bias", (dim,))


def _linear(state: dict, src: SourceState, hf: str, ours: str, shape: tuple[int, int]) -> None:
    state[f"{ours}.weight"], state[f"{ours}.bias"] = src.take(f"{hf}.weight", shape), src.take(f"{hf}.bias", shape[:1])


def _dinov2(src: SourceState, c: dict, family: str, model_type: str):
    dim, depth, heads = c.get("hidden_size", 768), c.get("num_hidden_layers", 12), c.get("num_attention_heads", 12)
    patch, size = _square(c.get("patch_size", 14), "patch_size"), _square(c.get("image_size", 224), "image_size")
    chans = c.get("num_channels", 3)
    swiglu, qkv_bias = c.get("use_swiglu_ffn", False), c.get("qkv_bias", True)
    hidden = int(dim * c.get("mlp_ratio", 4))
    if swiglu:  # as transformers' Dinov2SwiGLUFFN: two thirds of the width, rounded up to a multiple of 8
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
    registers = c.get("num_register_tokens", 0) if model_type == "dinov2_with_registers" else 0
    arch = dict(
        tower=model_type,
        embed_dim=dim,
        depth=depth,
        num_heads=heads,
        mlp_hidden=hidden,
        patch_size=patch,
        image_size=size,
        in_chans=chans,
        class_token=True,
        registers=registers,
        patch_bias=True,
        pre_norm=False,
        final_norm=True,
        layer_scale=True,
        mlp="swiglu" if swiglu else _activation(c.get("hidden_act", "gelu"), family),
        norm_eps=c.get("layer_norm_eps", 1e-6),
        qkv_bias=qkv_bias,
        antialias=model_type == "dinov2_with_registers",
    )
    dropped = src.skip("embeddings.mask_token")  # used only for masked image modelling in pretraining
    e, n = "embeddings", (size // patch) ** 2
    state = {
        "patch_embed.proj.weight": src.take(f"{e}.patch_embeddings.projection.weight", (dim, chans, patch, patch)),
        "patch_embed.proj.bias": src.take(f"{e}.patch_embeddings.projection.bias", (dim,)),
        "patch_embed.cls_token": src.take(f"{e}.cls_token", (1, 1, dim)),
        "patch_embed.pos_table": src.take(f"{e}.position_embeddings", (1, n + 1, dim)),
    }
    if registers:
        state["patch_embed.registers"] = src.take(f"{e}.register_tokens", (1, registers, dim))
    _norm(state, src, "layernorm", "norm", dim)
    for i in range(depth):
        hf, ours = f"encoder.layer.{i}", f"blocks.{i}"
        names = [f"{hf}.attention.attention.{p}" for p in ("query", "key", "value")]
        state[f"{ours}.attn.qkv.weight"], qkv_b = _fused_qkv(src, names, dim, qkv_bias)
        if qkv_bias:
            state[f"{ours}.attn.qkv.bias"] = qkv_b
        _linear(state, src, f"{hf}.attention.output.dense", f"{ours}.attn.proj", (dim, dim))
        for k in (1, 2):
            _norm(state, src, f"{hf}.norm{k}", f"{ours}.norm{k}", dim)
            state[f"{ours}.ls{k}.gamma"] = src.take(f"{hf}.layer_scale{k}.lambda1", (dim,))
        fc1, fc2 = ("mlp.weights_in", "mlp.weights_out") if swiglu else ("mlp.fc1", "mlp.fc2")
        _linear(state, src, f"{hf}.{fc1}", f"{ours}.mlp.fc1", ((2 if swiglu else 1) * hidden, dim))
        _linear(state, src, f"{hf}.{fc2}", f"{ours}.mlp.fc2", (dim, hidden))
    return arch, state, dropped, "its final layernorm"


def _clip_like(src: SourceState, c: dict, family: str, model_type: str):
    clip = family == "clip"
    dim, depth, heads = c.get("hidden_size", 768), c.get("num_hidden_layers", 12), c.get("num_attention_heads", 12)
    hidden, chans = c.get("intermediate_size", 3072), c.get("num_channels", 3)
    patch = _square(c.get("patch_size", 32 if clip else 16), "patch_size")
    size = _square(c.get("image_size", 224), "image_size")
    n = (size // patch) ** 2
    arch = dict(
        tower=model_type,
        embed_dim=dim,
        depth=depth,
        num_heads=heads,
        mlp_hidden=hidden,
        patch_size=patch,
        image_size=size,
        in_chans=chans,
        class_token=clip,
        registers=0,
        patch_bias=not clip,
        pre_norm=clip,
        final_norm=not clip,
        layer_scale=False,
        mlp=_activation(c.get("hidden_act", "quick_gelu" if clip else "gelu_pytorch_tanh"), family),
        norm_eps=c.get("layer_norm_eps", 1e-5 if clip else 1e-6),
        qkv_bias=True,
        antialias=False,
    )
    # not part of the per-frame token maps: CLIP's post-norm (pooled class token only), SigLIP's pooling head;
    # position_ids is a buffer older files stored
    dropped = src.skip("post_layernorm.") if clip else src.skip("head.")
    dropped += src.skip("embeddings.position_ids")
    e = "embeddings"
    state = {
        "patch_embed.proj.weight": src.take(f"{e}.patch_embedding.weight", (dim, chans, patch, patch)),
        "patch_embed.pos_table": src.take(f"{e}.position_embedding.weight", (n + int(clip), dim)),
    }
    if state["patch_embed.pos_table"] is not None:
        state["patch_embed.pos_table"] = state["patch_embed.pos_table"][None]
    if clip:
        cls = src.take(f"{e}.class_embedding", (dim,))
        state["patch_embed.cls_token"] = None if cls is None else cls.reshape(1, 1, dim)
        _norm(state, src, "pre_layrnorm", "pre_norm", dim)
    else:
        state["patch_embed.proj.bias"] = src.take(f"{e}.patch_embedding.bias", (dim,))
        _norm(state, src, "post_layernorm", "norm", dim)
    for i in range(depth):
        hf, ours = f"encoder.layers.{i}", f"blocks.{i}"
        names = [f"{hf}.self_attn.{p}_proj" for p in ("q", "k", "v")]
        state[f"{ours}.attn.qkv.weight"], state[f"{ours}.attn.qkv.bias"] = _fused_qkv(src, names, dim, True)
        _linear(state, src, f"{hf}.self_attn.out_proj", f"{ours}.attn.proj", (dim, dim))
        for k in (1, 2):
            _norm(state, src, f"{hf}.layer_norm{k}", f"{ours}.norm{k}", dim)
        _linear(state, src, f"{hf}.mlp.fc1", f"{ours}.mlp.fc1", (hidden, dim))
        _linear(state, src, f"{hf}.mlp.fc2", f"{ours}.mlp.fc2", (dim, hidden))
    norm = "no norm (CLIP's post_layernorm is for the pooled class token only)" if clip else "post_layernorm"
    return arch, state, dropped, norm
