"""Hugging Face `VJEPA2Model` folders (config.json + model.safetensors) <-> our encoder and predictor.

Layout differences handled (HF name -> ours):
  encoder.embeddings.patch_embeddings.proj      -> patch_embed
  encoder.layer.i.attention.{query,key,value}   -> blocks.i.attn.qkv   (three (D, D) matrices fused in q, k, v order)
  encoder.layer.i.attention.proj, norm1, norm2, mlp.fc1, mlp.fc2 -> blocks.i.attn.proj, norm1, norm2, mlp.fc1, mlp.fc2
  encoder.layernorm                             -> norm
  predictor.embeddings.predictor_embeddings     -> predictor embed
  predictor.embeddings.mask_tokens (n, 1, 1, P) -> predictor mask_tokens (n, P)
  predictor.layer.i.*, predictor.layernorm, predictor.proj -> predictor blocks.i.*, norm, head
HF's RoPE is V-JEPA 2's released layout (`pos_embed="rope_vjepa2"`), its predictor uses mask token 1
when none is named (`default_mask_index=1`), and it reads the token grid from config (crop_size,
frames_per_clip), which therefore become the card's clip protocol. Neither direction needs
`transformers`: both read and write the folder's two files directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from videojepa.data.config import IMAGENET_MEAN, IMAGENET_STD
from videojepa.encoder_io import ClipProtocol, EncoderCard, load_state_strict
from videojepa.errors import UserError
from videojepa.interop.state import SourceState
from videojepa.models.blocks import LN_EPS
from videojepa.models.predictor import Predictor
from videojepa.models.registry import encoder_from_arch, find_architecture
from videojepa.utils.files import atomic_path

WEIGHTS = "model.safetensors"
HF_MASK_INDEX = 1  # VJEPA2PredictorEmbeddings.forward's default


def read_folder(folder: Path, model_type: str) -> tuple[dict, dict]:
    """config.json and model.safetensors of a `save_pretrained` folder, checked for the model type."""
    from safetensors.torch import load_file

    config_path, weights = folder / "config.json", folder / WEIGHTS
    for path in (config_path, weights):
        if not path.is_file():
            raise UserError(
                f"{folder}: no {path.name} (expected a folder written by transformers' save_pretrained; "
                f"sharded or .bin checkpoints are not supported)"
            )
    config = json.loads(config_path.read_text())
    if config.get("model_type") != model_type:
        names = config.get("architectures") or ["a model"]
        raise UserError(
            f"{config_path}: {names[0]} (model_type {config.get('model_type')!r}), not a {model_type!r} model; "
            f"`videojepa convert --from hf` reads every Hugging Face model this project converts"
        )
    return config, load_file(str(weights))


def _hf_block(src: SourceState, hf: str, ours: str, dim: int, hidden: int, qkv_bias: bool) -> dict:
    out = {}
    for name in ("norm1", "norm2"):
        out[f"{ours}.{name}.weight"] = src.take(f"{hf}.{name}.weight", (dim,))
        out[f"{ours}.{name}.bias"] = src.take(f"{hf}.{name}.bias", (dim,))
    parts = [src.take(f"{hf}.attention.{p}.weight", (dim, dim)) for p in ("query", "key", "value")]
    out[f"{ours}.attn.qkv.weight"] = None if any(p is None for p in parts) else torch.cat(parts)
    if qkv_bias:
        parts = [src.take(f"{hf}.attention.{p}.bias", (dim,)) for p in ("query", "key", "value")]
        out[f"{ours}.attn.qkv.bias"] = None if any(p is None for p in parts) else torch.cat(parts)
    for hf_name, our_name, shape in (
        ("attention.proj", "attn.proj", (dim, dim)),
        ("mlp.fc1", "mlp.fc1", (hidden, dim)),
        ("mlp.fc2", "mlp.fc2", (dim, hidden)),
    ):
        out[f"{ours}.{our_name}.weight"] = src.take(f"{hf}.{hf_name}.weight", shape)
        out[f"{ours}.{our_name}.bias"] = src.take(f"{hf}.{hf_name}.bias", (shape[0],))
    return out


def from_hf(folder: str | Path) -> tuple[torch.nn.Module, Predictor, EncoderCard]:
    """Our encoder, predictor and the encoder's card from a `VJEPA2Model.save_pretrained` folder."""
    folder = Path(folder)
    config, tensors = read_folder(folder, "vjepa2")
    return vjepa2_from_tensors(folder, config, tensors)


def vjepa2_from_tensors(
    folder: Path, config: dict, tensors: dict, prefix: str = ""
) -> tuple[torch.nn.Module, Predictor, EncoderCard]:
    """`from_hf` from a folder's config and tensors; `prefix`: what the VJEPA2Model's names start with inside
    a larger model (`vjepa2.` in a VJEPA2ForVideoClassification). Every tensor must be used."""
    c = lambda key, default=None: config.get(key, default)  # noqa: E731 - HF omits keys equal to its defaults
    dim, depth, heads = c("hidden_size", 1024), c("num_hidden_layers", 24), c("num_attention_heads", 16)
    hidden, qkv_bias, eps = int(dim * c("mlp_ratio", 4.0)), c("qkv_bias", True), c("layer_norm_eps", LN_EPS)
    patch, tubelet, chans = c("patch_size", 16), c("tubelet_size", 2), c("in_chans", 3)
    if not isinstance(patch, int):
        raise UserError(f"{folder}/config.json: patch_size {patch!r}: only square patches are supported")
    encoder = encoder_from_arch(
        dict(
            embed_dim=dim,
            depth=depth,
            num_heads=heads,
            mlp_hidden=hidden,
            patch_size=patch,
            tubelet_size=tubelet,
            in_chans=chans,
            pos_embed="rope_vjepa2",
            qkv_bias=qkv_bias,
            norm_eps=eps,
            name=find_architecture(dim, depth, heads, hidden, "rope_vjepa2"),
        )
    )
    pdim, pdepth = c("pred_hidden_size", 384), c("pred_num_hidden_layers", 12)
    phidden = int(pdim * c("pred_mlp_ratio", 4.0))
    predictor = Predictor(
        dim,
        dim,
        embed_dim=pdim,
        depth=pdepth,
        num_heads=c("pred_num_attention_heads", 12),
        mlp_ratio=c("pred_mlp_ratio", 4.0),
        num_mask_tokens=c("pred_num_mask_tokens", 10),
        pos_embed="rope_vjepa2",
        default_mask_index=HF_MASK_INDEX % c("pred_num_mask_tokens", 10),
    )
    if eps != LN_EPS:  # our predictor's LayerNorms use V-JEPA's 1e-6, as every released V-JEPA 2 does
        raise UserError(f"{folder}/config.json: layer_norm_eps={eps}: only {LN_EPS} is supported for the predictor")

    src = SourceState({k[len(prefix) :]: v for k, v in tensors.items()}, str(folder / WEIGHTS), prefix=prefix)
    if any(k.startswith(("pooler.", "classifier.", "vjepa2.")) for k in src.tensors):
        src.hint = (
            "These are the tensors of a VJEPA2ForVideoClassification (an encoder under vjepa2., an attentive "
            "pooler and a classifier): `videojepa convert --from hf` converts it into an encoder and a probe"
        )
    enc = {
        "patch_embed.weight": src.take(
            "encoder.embeddings.patch_embeddings.proj.weight", (dim, chans, tubelet, patch, patch)
        ),
        "patch_embed.bias": src.take("encoder.embeddings.patch_embeddings.proj.bias", (dim,)),
        "norm.weight": src.take("encoder.layernorm.weight", (dim,)),
        "norm.bias": src.take("encoder.layernorm.bias", (dim,)),
    }
    for i in range(depth):
        enc.update(_hf_block(src, f"encoder.layer.{i}", f"blocks.{i}", dim, hidden, qkv_bias))
    n_tokens = c("pred_num_mask_tokens", 10)
    pred = {
        "embed.weight": src.take("predictor.embeddings.predictor_embeddings.weight", (pdim, dim)),
        "embed.bias": src.take("predictor.embeddings.predictor_embeddings.bias", (pdim,)),
        "norm.weight": src.take("predictor.layernorm.weight", (pdim,)),
        "norm.bias": src.take("predictor.layernorm.bias", (pdim,)),
        "head.weight": src.take("predictor.proj.weight", (dim, pdim)),
        "head.bias": src.take("predictor.proj.bias", (dim,)),
    }
    tokens = src.take("predictor.embeddings.mask_tokens", (n_tokens, 1, 1, pdim))
    pred["mask_tokens"] = None if tokens is None else tokens.reshape(n_tokens, pdim)
    for i in range(pdepth):
        pred.update(_hf_block(src, f"predictor.layer.{i}", f"blocks.{i}", pdim, phidden, qkv_bias))
    src.finish()
    load_state_strict(encoder, enc, str(folder))
    load_state_strict(predictor, pred, str(folder))
    clip = ClipProtocol(frames=c("frames_per_clip", 64), crop=c("crop_size", 256), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    card = EncoderCard.describe(
        encoder,
        clip=clip,
        method="vjepa2",
        source={"format": "hf", "path": str(folder.resolve()), "model_type": "vjepa2"},
    )
    return encoder.eval(), predictor.eval(), card


def to_hf(encoder: torch.nn.Module, predictor: Predictor, out: str | Path, frames: int, crop: int) -> Path:
    """Write `out`/config.json + model.safetensors that `VJEPA2Model.from_pretrained(out)` loads."""
    config, tensors = hf_config_and_tensors(encoder, predictor, frames, crop)
    return write_folder(out, config, tensors)


def write_folder(out: str | Path, config: dict, tensors: dict[str, torch.Tensor]) -> Path:
    """A `save_pretrained`-style folder: config.json + model.safetensors."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


def hf_config_and_tensors(encoder: torch.nn.Module, predictor: Predictor, frames: int, crop: int):
    """The VJEPA2Model config and tensors (names as in its state dict) of our encoder and predictor."""
    a, p = encoder.arch, predictor.arch
    unsupported = [
        f"{k}={a.get(k)!r}"
        for k, want in (("pos_embed", "rope_vjepa2"), ("k_bias", None), ("final_norm", None), ("norm_eps", None))
        if a.get(k) != want
    ]
    if p["pos_embed"] != "rope_vjepa2":
        unsupported.append(f"predictor pos_embed={p['pos_embed']!r}")
    if p["in_dim"] != a["embed_dim"] or p["out_dim"] != a["embed_dim"]:
        unsupported.append(f"predictor width in/out {p['in_dim']}/{p['out_dim']} (HF needs the encoder's)")
    if unsupported:
        raise UserError(
            "`--to hf` writes V-JEPA 2 models (rope_vjepa2, q/k/v biases, final LayerNorm eps 1e-6); "
            f"this one has {', '.join(unsupported)}"
        )
    config = {
        "architectures": ["VJEPA2Model"],
        "model_type": "vjepa2",
        "hidden_size": a["embed_dim"],
        "num_hidden_layers": a["depth"],
        "num_attention_heads": a["num_heads"],
        "mlp_ratio": a["mlp_hidden"] / a["embed_dim"],
        "patch_size": a["patch_size"],
        "tubelet_size": a["tubelet_size"],
        "in_chans": a["in_chans"],
        "qkv_bias": a["qkv_bias"],
        "layer_norm_eps": LN_EPS,
        "crop_size": crop,
        "frames_per_clip": frames,
        "pred_hidden_size": p["embed_dim"],
        "pred_num_hidden_layers": p["depth"],
        "pred_num_attention_heads": p["num_heads"],
        "pred_mlp_ratio": p["mlp_ratio"],
        "pred_num_mask_tokens": p["num_mask_tokens"],
        "hidden_act": "gelu",
    }
    if int(config["hidden_size"] * config["mlp_ratio"]) != a["mlp_hidden"]:
        raise UserError(f"MLP width {a['mlp_hidden']} is not expressible as HF's int(hidden_size * mlp_ratio)")
    tensors = {}
    for prefix, module, names in (("encoder", encoder, _ENCODER_NAMES), ("predictor", predictor, _PREDICTOR_NAMES)):
        for key, value in module.state_dict().items():
            for hf_key, tensor in _to_hf_key(key, value, names):
                tensors[f"{prefix}.{hf_key}"] = tensor.detach().contiguous().cpu().float()
    return config, tensors


_ENCODER_NAMES = {"patch_embed": "embeddings.patch_embeddings.proj", "norm": "layernorm", "blocks": "layer"}
_PREDICTOR_NAMES = {
    "embed": "embeddings.predictor_embeddings",
    "norm": "layernorm",
    "head": "proj",
    "blocks": "layer",
    "mask_tokens": "embeddings.mask_tokens",
}


def _to_hf_key(key: str, value: torch.Tensor, names: dict):
    head, _, rest = key.partition(".")
    if head == "mask_tokens":
        yield names[head], value.reshape(value.shape[0], 1, 1, value.shape[1])
        return
    if head != "blocks":
        yield f"{names[head]}.{rest}", value
        return
    index, _, rest = rest.partition(".")
    base = f"layer.{index}"
    if rest.startswith("attn.qkv."):
        kind = rest.rsplit(".", 1)[1]
        for name, part in zip(("query", "key", "value"), value.chunk(3)):
            yield f"{base}.attention.{name}.{kind}", part
    else:
        yield f"{base}.{rest.replace('attn.proj', 'attention.proj')}", value
