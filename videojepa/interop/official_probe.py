"""Official V-JEPA 2 attentive-probe checkpoints (`evals/video_classification_frozen`, e.g. the released
`ssv2-vitl-16x2x3.pt`) -> our attentive probe, beside an encoder.

    encoder, predictor, card, write_probe = from_official_probe("ssv2-vitl-16x2x3.pt", encoder="models/vjepa2-vitl",
                                                               frames=16, segments=2, views=3, crop=256)

What the official evaluation saves (read from its code): a dict {"classifiers": [one state dict per probe of
its lr x wd grid, keys prefixed `module.` by DDP], "opt", "scaler", "epoch", "batch_size", "world_size"},
read here with `torch.load(weights_only=True)`. Each probe is an `AttentiveClassifier`:
  module.pooler.query_tokens (1, 1, D)                         -> query
  module.pooler.blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2} -> blocks.i.* (same names)
  module.pooler.cross_attention_block.{norm1, norm2, mlp.*}    -> pool.{norm1, norm2, mlp.*}
  module.pooler.cross_attention_block.xattn.{q, kv}            -> pool.xattn.{q, kv}
  module.linear                                                -> head
`num_probe_blocks` N gives N - 1 self-attention blocks; the cross-attention has no output projection
(`out_proj=False`); its LayerNorms are torch's default (eps 1e-5). The head count is not stored: the
official configs and eval.py's default use 16 (also for the 22-head ViT-g), so 16 unless `heads` is given.
The clip protocol is not stored either: the released files name it (`16x2x3`: 16 frames, 2 segments, 3
views; frame step 4 for ViT-L SSv2, see the official inference configs). Test views are averaged as
probabilities (softmax), as the official evaluation does.

The probe file holds no encoder: `encoder` is any encoder `load_encoder` reads (e.g. the `videojepa convert`
output of the official V-JEPA 2 weights); it is copied into the output folder with the probe.
"""

from __future__ import annotations

import re
from pathlib import Path

from videojepa.encoder_io import PREDICTOR_FILE, load_encoder, load_predictor, load_state_strict, resolve_encoder_path
from videojepa.errors import UserError
from videojepa.eval.probe_file import ClassifierProtocol, ProbeCard, write_probe_folder
from videojepa.eval.probes import AttentiveProbe
from videojepa.interop.registry import CheckpointSource, register_source
from videojepa.interop.state import SourceState, strip_prefixes
from videojepa.utils.files import safe_load

OFFICIAL_PROBE_HEADS = 16  # evals/video_classification_frozen/eval.py: classifier.get("num_heads", 16)
OFFICIAL_NORM_EPS = 1e-5  # nn.LayerNorm's default, the official norm_layer


def read_probe_checkpoint(path: Path, index: int) -> dict:
    """The `index`-th probe's tensors of an official checkpoint, `module.` prefixes removed."""
    payload = safe_load(path)
    probes = payload.get("classifiers") if isinstance(payload, dict) else None
    if not isinstance(probes, (list, tuple)) or not probes:
        found = ", ".join(sorted(map(str, payload))) if isinstance(payload, dict) else type(payload).__name__
        raise UserError(
            f"{path}: not an official V-JEPA 2 probe checkpoint (no 'classifiers' list; it holds: {found})"
            + ("; a pretraining checkpoint converts with --from official" if "encoder" in str(found) else "")
        )
    if not 0 <= index < len(probes):
        raise UserError(
            f"{path}: --classifier {index}, but the file holds {len(probes)} probe(s) (0..{len(probes) - 1})"
        )
    if not isinstance(probes[index], dict):
        raise UserError(f"{path}: classifiers[{index}] is a {type(probes[index]).__name__}, not a state dict")
    return strip_prefixes(probes[index], ("module.",))


def probe_from_official(
    path: Path,
    tensors: dict,
    heads: int | None,
    protocol: ClassifierProtocol,
    index: int = 0,
):
    """Our `AttentiveProbe` and its card from one official probe's tensors; every tensor must be used."""
    origin = f"{path} [classifiers.{index}]"
    for key in ("pooler.query_tokens", "linear.weight"):
        if key not in tensors:
            raise UserError(
                f"{origin}: no {key}: not an official AttentiveClassifier "
                f"(keys start: {', '.join(sorted(tensors)[:5])})"
            )
    dim, num_classes = tensors["pooler.query_tokens"].shape[-1], tensors["linear.weight"].shape[0]
    blocks = len({m.group(1) for k in tensors if (m := re.match(r"pooler\.blocks\.(\d+)\.", k))})
    fc1 = tensors.get("pooler.cross_attention_block.mlp.fc1.weight")
    ratio = fc1.shape[0] / dim if fc1 is not None else 4.0
    heads = heads or OFFICIAL_PROBE_HEADS
    if dim % heads:
        raise UserError(f"{origin}: width {dim} is not divisible by {heads} heads; give --heads")
    probe = AttentiveProbe(dim, num_classes, heads, 1, blocks, ratio, norm_eps=OFFICIAL_NORM_EPS, out_proj=False)
    src = SourceState(tensors, origin, prefix="module.")
    if "pooler.cross_attention_block.xattn.q.weight" in tensors and fc1 is None:
        src.hint = "this probe's pooler has no complete cross-attention block (complete_block=False): not supported"
    renames = {"query": "pooler.query_tokens", "head.weight": "linear.weight", "head.bias": "linear.bias"}
    state = {}
    for key, value in probe.state_dict().items():
        if key in renames:
            name = renames[key]
        elif key.startswith("pool."):
            name = "pooler.cross_attention_block." + key[len("pool.") :]
        else:  # blocks.i.*
            name = "pooler." + key
        state[key] = src.take(name, tuple(value.shape))
    src.finish()
    load_state_strict(probe, state, origin)
    card = ProbeCard(
        arch=probe.arch,
        layers=[-1],
        protocol=protocol,
        source={"format": "official", "path": str(path.resolve()), "classifier": index, "heads": heads},
    )
    return probe.eval(), card


def from_official_probe(
    path: str | Path,
    encoder: str | Path | None = None,
    classifier: int = 0,
    heads: int | None = None,
    frames: int | None = None,
    frame_step: int | None = None,
    crop: int | None = None,
    segments: int = 1,
    views: int = 1,
):
    """(encoder, predictor or None, encoder card, writer of OUT/probe.safetensors) for an official probe file
    and the encoder it was trained on."""
    path = Path(path)
    if encoder is None:
        raise UserError(
            f"{path}: an official probe file holds no encoder: give --encoder (the `videojepa convert` output of "
            f"the V-JEPA 2 weights it was trained on)"
        )
    enc = load_encoder(encoder)
    tensors = read_probe_checkpoint(path, classifier)
    # the official test views: with several, the short side is resized to the crop and the views span it;
    # with one, the short side is resized to crop * 256/224 and the centre is cropped (our default)
    protocol = ClassifierProtocol(
        frames=frames,
        frame_step=frame_step,
        crop=crop,
        resize_ratio=1.0 if views > 1 else None,
        num_clips=segments,
        num_views=views,
        average="softmax",
    )
    probe, card = probe_from_official(path, tensors, heads, protocol, classifier)
    if probe.arch["dim"] != enc.embed_dim:
        raise UserError(
            f"{path}: the probe reads width {probe.arch['dim']}, but --encoder {encoder} has {enc.embed_dim}"
        )
    enc_file = resolve_encoder_path(encoder)
    predictor = None
    if (enc_file.parent / PREDICTOR_FILE).is_file():
        predictor = load_predictor(enc_file.parent)
    card = card.model_copy(update={"source": {**card.source, "encoder": str(enc_file.resolve())}})
    return enc, predictor, enc.card, lambda out: write_probe_folder(Path(out), probe, card)


@register_source
class OfficialProbe(CheckpointSource):
    name = "official-probe"
    description = "an official V-JEPA 2 attentive-probe .pt (with --encoder: the encoder it was trained on)"
    options = ("encoder", "classifier", "heads", "frames", "frame_step", "crop", "segments", "views")

    def read(self, path: Path, **options):
        return from_official_probe(path, **options)
