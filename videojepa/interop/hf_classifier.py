"""Hugging Face `VJEPA2ForVideoClassification` folders <-> our encoder, predictor and attentive probe.

    encoder, predictor, card, write_probe = from_hf_classifier("models/hf/vjepa2-vitl-fpc16-256-ssv2")
    to_hf_classifier(encoder, predictor, probe, out)        # back to VJEPA2ForVideoClassification.from_pretrained

The model is a `VJEPA2Model` (under `vjepa2.`, converted as `hf_vjepa2` does) plus an attentive pooler and
a linear classifier. Layout differences handled (HF name -> ours, `AttentiveProbe`):
  pooler.query_tokens (1, 1, D)                              -> query
  pooler.self_attention_layers.i.{layer_norm1, layer_norm2}   -> blocks.i.{norm1, norm2}
  pooler.self_attention_layers.i.self_attn.{q,k,v}_proj       -> blocks.i.attn.qkv (fused in q, k, v order)
  pooler.self_attention_layers.i.self_attn.out_proj, mlp.*    -> blocks.i.attn.proj, blocks.i.mlp.*
  pooler.cross_attention_layer.{layer_norm1, layer_norm2}     -> pool.{norm1, norm2}
  pooler.cross_attention_layer.cross_attn.q_proj              -> pool.xattn.q
  pooler.cross_attention_layer.cross_attn.{k,v}_proj          -> pool.xattn.kv (fused in k, v order)
  pooler.cross_attention_layer.mlp.*                          -> pool.mlp.*
  classifier                                                  -> head
What HF's pooler is, read from its code (transformers 5.23): the encoder's head count
(`num_attention_heads`), `num_pooler_layers` self-attention layers, LayerNorm eps `layer_norm_eps`, MLPs 4x
wide whatever the encoder's `mlp_ratio`, and no output projection after the cross-attention (our probe's
`out_proj=False`). It classifies one clip (`frames_per_clip` at `crop_size`) by its logits: the probe card's
protocol is that single clip; the class names are the config's `id2label`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from videojepa.encoder_io import load_state_strict
from videojepa.errors import UserError
from videojepa.eval.probe_file import ClassifierProtocol, ProbeCard, write_probe_folder
from videojepa.eval.probes import AttentiveProbe
from videojepa.interop.hf_vjepa2 import WEIGHTS, hf_config_and_tensors, read_folder, vjepa2_from_tensors, write_folder
from videojepa.interop.state import SourceState
from videojepa.models.blocks import LN_EPS

POOLER_MLP_RATIO = 4.0  # VJEPA2PoolerSelfAttentionLayer / CrossAttentionLayer build VJEPA2MLP with its default
ARCHITECTURE = "VJEPA2ForVideoClassification"
ENCODER_PREFIX = "vjepa2."


def _linear(src: SourceState, hf: str, shape: tuple[int, int]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    return src.take(f"{hf}.weight", shape), src.take(f"{hf}.bias", (shape[0],))


def _fused(src: SourceState, hf: str, names: tuple[str, ...], dim: int) -> dict:
    """Separate (D, D) projections `hf`.{name}_proj stacked into one (n*D, D) linear, weight and bias."""
    weights = [src.take(f"{hf}.{n}_proj.weight", (dim, dim)) for n in names]
    biases = [src.take(f"{hf}.{n}_proj.bias", (dim,)) for n in names]
    return {
        "weight": None if any(w is None for w in weights) else torch.cat(weights),
        "bias": None if any(b is None for b in biases) else torch.cat(biases),
    }


def _mlp_and_norms(src: SourceState, hf: str, ours: str, dim: int, hidden: int) -> dict:
    out = {}
    for hf_norm, our_norm in (("layer_norm1", "norm1"), ("layer_norm2", "norm2")):
        out[f"{ours}.{our_norm}.weight"] = src.take(f"{hf}.{hf_norm}.weight", (dim,))
        out[f"{ours}.{our_norm}.bias"] = src.take(f"{hf}.{hf_norm}.bias", (dim,))
    for name, shape in (("fc1", (hidden, dim)), ("fc2", (dim, hidden))):
        out[f"{ours}.mlp.{name}.weight"], out[f"{ours}.mlp.{name}.bias"] = _linear(src, f"{hf}.mlp.{name}", shape)
    return out


def probe_from_hf(folder: Path, config: dict, tensors: dict[str, torch.Tensor]):
    """Our `AttentiveProbe` and its card from the pooler and classifier tensors of a
    VJEPA2ForVideoClassification (the tensors outside `vjepa2.`)."""
    c = lambda key, default=None: config.get(key, default)  # noqa: E731 - HF omits keys equal to its defaults
    dim, heads, blocks = c("hidden_size", 1024), c("num_attention_heads", 16), c("num_pooler_layers", 3)
    eps = c("layer_norm_eps", LN_EPS)
    src = SourceState(tensors, str(folder / WEIGHTS))
    classifier = src.tensors.get("classifier.weight")
    if classifier is None:
        raise UserError(f"{folder / WEIGHTS}: no classifier.weight: not a {ARCHITECTURE}")
    num_classes = classifier.shape[0]
    hidden = int(dim * POOLER_MLP_RATIO)
    probe = AttentiveProbe(dim, num_classes, heads, 1, blocks, POOLER_MLP_RATIO, norm_eps=eps, out_proj=False)
    state = {"query": src.take("pooler.query_tokens", (1, 1, dim))}
    state["head.weight"], state["head.bias"] = _linear(src, "classifier", (num_classes, dim))
    cross = "pooler.cross_attention_layer"
    state["pool.xattn.q.weight"], state["pool.xattn.q.bias"] = _linear(src, f"{cross}.cross_attn.q_proj", (dim, dim))
    kv = _fused(src, f"{cross}.cross_attn", ("k", "v"), dim)
    state["pool.xattn.kv.weight"], state["pool.xattn.kv.bias"] = kv["weight"], kv["bias"]
    state.update(_mlp_and_norms(src, cross, "pool", dim, hidden))
    for i in range(blocks):
        hf, ours = f"pooler.self_attention_layers.{i}", f"blocks.{i}"
        qkv = _fused(src, f"{hf}.self_attn", ("q", "k", "v"), dim)
        state[f"{ours}.attn.qkv.weight"], state[f"{ours}.attn.qkv.bias"] = qkv["weight"], qkv["bias"]
        state[f"{ours}.attn.proj.weight"], state[f"{ours}.attn.proj.bias"] = _linear(
            src, f"{hf}.self_attn.out_proj", (dim, dim)
        )
        state.update(_mlp_and_norms(src, hf, ours, dim, hidden))
    src.finish()
    load_state_strict(probe, state, str(folder / WEIGHTS))
    labels = {int(k): v for k, v in (c("id2label") or {}).items()}
    classes = [labels.get(i, str(i)) for i in range(num_classes)]
    card = ProbeCard(
        arch=probe.arch,
        layers=[-1],
        protocol=ClassifierProtocol(frames=c("frames_per_clip", 64), crop=c("crop_size", 256), average="logits"),
        classes=classes,
        source={"format": "hf", "path": str(folder.resolve()), "architectures": [ARCHITECTURE]},
    )
    return probe.eval(), card


def from_hf_classifier(folder: str | Path):
    """(encoder, predictor, encoder card, writer of OUT/probe.safetensors) from a
    `VJEPA2ForVideoClassification.save_pretrained` folder. Every tensor of the file is used."""
    folder = Path(folder)
    config, tensors = read_folder(folder, "vjepa2")
    inner = {k: v for k, v in tensors.items() if k.startswith(ENCODER_PREFIX)}
    outer = {k: v for k, v in tensors.items() if not k.startswith(ENCODER_PREFIX)}
    probe, probe_card = probe_from_hf(folder, config, outer)
    encoder, predictor, card = vjepa2_from_tensors(folder, config, inner, prefix=ENCODER_PREFIX)
    card = card.model_copy(update={"source": {**card.source, "architectures": [ARCHITECTURE]}})
    return encoder, predictor, card, lambda out: write_probe_folder(Path(out), probe, probe_card)


def to_hf_classifier(encoder, predictor, probe, card: ProbeCard, out: str | Path, frames: int, crop: int) -> Path:
    """Write `out` as a folder `VJEPA2ForVideoClassification.from_pretrained` loads, or say what HF's pooler
    cannot express."""
    a = probe.arch
    problems = [
        f"{what} (HF's pooler: {want})"
        for what, bad, want in (
            ("an output projection after the cross-attention", a["out_proj"], "none"),
            (f"{a['num_queries']} queries", a["num_queries"] != 1, "1"),
            (f"{a['num_heads']} heads", a["num_heads"] != encoder.num_heads, f"the encoder's {encoder.num_heads}"),
            (f"MLP ratio {a['mlp_ratio']}", a["mlp_ratio"] != POOLER_MLP_RATIO, "4"),
            (f"LayerNorm eps {a['norm_eps']}", a["norm_eps"] != LN_EPS, f"the encoder's {LN_EPS}"),
            (f"encoder layers {card.layers}", card.layers != [-1], "the last, [-1]"),
        )
        if bad
    ]
    if problems:
        raise UserError(
            f"`--to hf` cannot write this probe as a {ARCHITECTURE}: it has " + "; ".join(problems) + ". Probes "
            "converted from Hugging Face export exactly; `videojepa probe` trains V-JEPA 1-style probes "
            "(with an output projection), which this HF class cannot hold"
        )
    config, tensors = hf_config_and_tensors(encoder, predictor, frames, crop)
    tensors = {ENCODER_PREFIX + k: v for k, v in tensors.items()}
    config.update(
        architectures=[ARCHITECTURE],
        num_pooler_layers=a["self_attn_blocks"],
        id2label={str(i): name for i, name in enumerate(card.classes or map(str, range(a["num_classes"])))},
    )
    config["label2id"] = {name: int(i) for i, name in config["id2label"].items()}
    for key, value in probe.state_dict().items():
        for name, tensor in _probe_key_to_hf(key, value):
            tensors[name] = tensor.detach().float().contiguous().cpu()
    return write_folder(out, config, tensors)


def _probe_key_to_hf(key: str, value: torch.Tensor):
    cross = "pooler.cross_attention_layer"
    norms = {"norm1": "layer_norm1", "norm2": "layer_norm2"}
    if key == "query":
        yield "pooler.query_tokens", value
    elif key.startswith("head."):
        yield "classifier." + key.split(".", 1)[1], value
    elif key.startswith("pool.xattn.q."):
        yield f"{cross}.cross_attn.q_proj.{key.rsplit('.', 1)[1]}", value
    elif key.startswith("pool.xattn.kv."):
        kind = key.rsplit(".", 1)[1]
        for name, part in zip(("k_proj", "v_proj"), value.chunk(2)):
            yield f"{cross}.cross_attn.{name}.{kind}", part
    elif key.startswith("pool."):
        first, rest = key.split(".", 2)[1:]
        yield f"{cross}.{norms.get(first, first)}.{rest}", value
    else:  # blocks.i.*
        _, index, part, rest = key.split(".", 3)
        base = f"pooler.self_attention_layers.{index}"
        if part == "attn" and rest.startswith("qkv."):
            kind = rest.split(".")[1]
            for name, chunk in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3)):
                yield f"{base}.self_attn.{name}.{kind}", chunk
        elif part == "attn":
            yield f"{base}.self_attn.out_proj.{rest.split('.', 1)[1]}", value
        else:
            yield f"{base}.{norms.get(part, part)}.{rest}", value
