"""Official V-JEPA (`.pth.tar`) and V-JEPA 2 (`.pt`) training checkpoints -> our encoder and predictor.

The files are dicts with `encoder` (the online network: what the official V-JEPA 2 torch.hub loader
reads), `target_encoder` (the EMA encoder: what the official frozen evaluations read) and `predictor`,
whose keys carry `module.` (DDP) and/or `backbone.` (the multi-mask wrapper) prefixes. They are read with
`torch.load(weights_only=True)`; a file that needs more is refused.

Layout differences handled (official name -> ours):
  patch_embed.proj.*        -> patch_embed.*
  pos_embed (1, N, D)       -> nothing: checked equal to our 3D sin-cos table (V-JEPA 1; V-JEPA 2 uses RoPE)
  blocks.*, norm.*          -> the same names (fused qkv as ours)
  predictor_embed / predictor_blocks / predictor_norm / predictor_proj -> embed / blocks / norm / head
  mask_tokens.i (1, 1, P)   -> mask_tokens[i]
  predictor_pos_embed       -> nothing: checked equal to our table (V-JEPA 1)
The family is read from the file (a `pos_embed` tensor means V-JEPA 1's sin-cos, none means V-JEPA 2's
RoPE layout `rope_vjepa2`). The head count is not stored: it comes from `arch` (a registry name such as
`vjepa2_vitg`, 22 heads) or `heads`, else from the registry entry of that family with the file's width
and depth. V-JEPA 2's predictor uses mask token 1 when none is named, as the official code does.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from videojepa.data.config import IMAGENET_MEAN, IMAGENET_STD
from videojepa.encoder_io import ClipProtocol, EncoderCard, load_state_strict
from videojepa.errors import UserError
from videojepa.interop.hf_models import architecture
from videojepa.interop.registry import CheckpointSource, register_source
from videojepa.interop.state import SourceState, strip_prefixes
from videojepa.models.pos_embed import sincos_3d
from videojepa.models.predictor import Predictor
from videojepa.models.registry import ARCHITECTURES, RELEASED, encoder_from_arch
from videojepa.utils.files import safe_load

VJEPA1_CLIP = dict(frames_per_clip=16, crop_size=224)  # V-JEPA 1's pretraining clips, when the user names none
VJEPA2_PREDICTOR_HEADS = 12
TABLE_TOL = 1e-4


def from_official(
    path: str | Path,
    which: str = "target_encoder",
    arch: str | None = None,
    heads: int | None = None,
    predictor_heads: int | None = None,
    frames: int | None = None,
    crop: int | None = None,
):
    path = Path(path)
    if path.is_dir():
        arch, model_type = architecture(path)
        what = f"a Hugging Face folder ({arch or model_type}): use --from hf" if model_type else "a folder"
        raise UserError(f"{path}: {what}; --from official reads a V-JEPA .pt / .pth.tar file")
    payload = safe_load(path)
    if isinstance(payload, dict) and "classifiers" in payload and which not in payload:
        raise UserError(
            f"{path}: an official V-JEPA 2 attentive-probe checkpoint (it holds {len(payload['classifiers'])} "
            f"probe(s), no encoder): use `videojepa convert --from official-probe {path} OUT --encoder ENCODER`"
        )
    if not isinstance(payload, dict) or which not in payload:
        found = ", ".join(sorted(map(str, payload))) if isinstance(payload, dict) else type(payload).__name__
        raise UserError(
            f"{path}: no {which!r} in this checkpoint (it holds: {found}); official V-JEPA files hold "
            f"encoder, target_encoder and predictor"
        )
    tensors = strip_prefixes(payload[which])
    family = "vjepa1" if "pos_embed" in tensors else "vjepa2"
    src = SourceState(tensors, f"{path} [{which}]")
    patch_w = _require(tensors, "patch_embed.proj.weight", src.origin)
    dim, chans, tubelet, patch = patch_w.shape[0], patch_w.shape[1], patch_w.shape[2], patch_w.shape[3]
    depth = _count(tensors, "blocks")
    fc1 = tensors.get("blocks.0.mlp.fc1.weight")
    hidden = fc1.shape[0] if fc1 is not None else 4 * dim
    name, num_heads = _heads(family, dim, depth, arch, heads, src.origin)
    released = RELEASED.get(name or "", {})
    fallback = VJEPA1_CLIP if family == "vjepa1" else {}
    frames = frames or released.get("frames_per_clip") or fallback.get("frames_per_clip")
    crop = crop or released.get("crop_size") or fallback.get("crop_size")
    encoder = encoder_from_arch(
        dict(
            embed_dim=dim,
            depth=depth,
            num_heads=num_heads,
            mlp_hidden=hidden,
            patch_size=patch,
            tubelet_size=tubelet,
            in_chans=chans,
            qkv_bias="blocks.0.attn.qkv.bias" in tensors,
            pos_embed="sincos" if family == "vjepa1" else "rope_vjepa2",
            name=name,
        )
    )
    renames = {"patch_embed.weight": "patch_embed.proj.weight", "patch_embed.bias": "patch_embed.proj.bias"}
    state = {k: src.take(renames.get(k, k), tuple(v.shape)) for k, v in encoder.state_dict().items()}
    if family == "vjepa1":
        _check_table(src, "pos_embed", dim, encoder, frames, crop)
    src.finish()
    load_state_strict(encoder, state, src.origin)
    predictor = None
    if "predictor" in payload:
        predictor = _predictor(
            payload["predictor"], path, family, dim, num_heads, predictor_heads, encoder, frames, crop
        )
    clip = ClipProtocol(frames=frames, crop=crop, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    source = {
        "format": "official",
        "path": str(path.resolve()),
        "which": which,
        "family": family,
        "heads_from": f"arch {name}" if name else "--heads",
    }
    card = EncoderCard.describe(encoder, clip=clip, method=family, source=source)
    return encoder.eval(), predictor, card


def _predictor(
    raw: dict, path: Path, family: str, enc_dim: int, enc_heads: int, heads: int | None, encoder, frames, crop
) -> Predictor:
    tensors = strip_prefixes(raw)
    src = SourceState(tensors, f"{path} [predictor]")
    embed = _require(tensors, "predictor_embed.weight", src.origin)
    proj = _require(tensors, "predictor_proj.weight", src.origin)
    pdim, depth = embed.shape[0], _count(tensors, "predictor_blocks")
    n_tokens = len({m.group(1) for k in tensors if (m := re.match(r"mask_tokens\.(\d+)$", k))})
    fc1 = tensors.get("predictor_blocks.0.mlp.fc1.weight")
    ratio = (fc1.shape[0] if fc1 is not None else 4 * pdim) / pdim
    heads = heads or (VJEPA2_PREDICTOR_HEADS if family == "vjepa2" else enc_heads)
    try:
        predictor = Predictor(
            enc_dim,
            proj.shape[0],
            embed_dim=pdim,
            depth=depth,
            num_heads=heads,
            mlp_ratio=ratio,
            num_mask_tokens=max(n_tokens, 1),
            pos_embed="sincos" if family == "vjepa1" else "rope_vjepa2",
            default_mask_index=1 if family == "vjepa2" and n_tokens > 1 else 0,
        )
    except ValueError as err:
        raise UserError(f"{src.origin}: {err} (give --predictor-heads)") from None
    names = {
        "embed": "predictor_embed",
        "blocks": "predictor_blocks",
        "norm": "predictor_norm",
        "head": "predictor_proj",
    }
    state = {}
    for key, value in predictor.state_dict().items():
        head, _, rest = key.partition(".")
        if head == "mask_tokens":
            tokens = [src.take(f"mask_tokens.{i}", (1, 1, pdim)) for i in range(value.shape[0])]
            state[key] = None if any(t is None for t in tokens) else torch.cat(tokens).reshape(value.shape)
        else:
            state[key] = src.take(f"{names[head]}.{rest}", tuple(value.shape))
    if family == "vjepa1":
        _check_table(src, "predictor_pos_embed", pdim, encoder, frames, crop)
    src.finish()
    load_state_strict(predictor, state, src.origin)
    return predictor.eval()


def _require(tensors: dict, key: str, origin: str) -> torch.Tensor:
    if key not in tensors:
        raise UserError(
            f"{origin}: no {key}: not an official V-JEPA network (keys start: {', '.join(sorted(tensors)[:5])})"
        )
    return tensors[key]


def _count(tensors: dict, prefix: str) -> int:
    indices = {int(m.group(1)) for k in tensors if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
    return max(indices) + 1 if indices else 0


def _heads(family: str, dim: int, depth: int, arch: str | None, heads: int | None, origin: str):
    """(registry name or None, head count): never guessed from the weights, which do not determine it."""
    if arch is not None:
        if arch not in ARCHITECTURES:
            raise UserError(f"--arch {arch!r} is not in the registry; available: {', '.join(ARCHITECTURES)}")
        spec = ARCHITECTURES[arch]
        if (spec["embed_dim"], spec["depth"]) != (dim, depth):
            raise UserError(
                f"{origin}: width {dim} and depth {depth}, but --arch {arch} has {spec['embed_dim']} and "
                f"{spec['depth']}"
            )
        return arch, heads or spec["num_heads"]
    if heads is not None:
        return None, heads
    wanted_rope = family == "vjepa2"
    matches = [
        name
        for name, spec in ARCHITECTURES.items()
        if (spec["embed_dim"], spec["depth"]) == (dim, depth)
        and (spec.get("pos_embed") == "rope_vjepa2") == wanted_rope
    ]
    if len(matches) != 1:
        raise UserError(
            f"{origin}: official files do not store the head count and no single registry entry of the "
            f"{family} family has width {dim} and depth {depth} (found: {matches or 'none'}); give --arch "
            f"(e.g. vjepa2_vitg) or --heads"
        )
    return matches[0], ARCHITECTURES[matches[0]]["num_heads"]


def _check_table(src: SourceState, key: str, dim: int, encoder, frames: int | None, crop: int | None) -> None:
    """V-JEPA 1's stored sin-cos table must be the one our encoder computes (it is not a learned weight)."""
    stored = src.take(key)
    if stored is None:
        return
    grid = encoder.grid(frames, crop, crop) if frames and crop else None
    tokens = grid[0] * grid[1] * grid[2] if grid else None
    if tokens is None or tuple(stored.shape) != (1, tokens, dim):
        src.misshaped.append(
            f"{key} {tuple(stored.shape)}, expected (1, {tokens}, {dim}) for {frames} frames at "
            f"{crop} px (give --frames / --crop)"
        )
        return
    error = float((stored[0] - sincos_3d(dim, grid)).abs().max())
    if error > TABLE_TOL:
        raise UserError(
            f"{src.origin}: {key} differs from the 3D sin-cos table by up to {error:.3g}: not V-JEPA's "
            f"fixed table, refusing to drop it"
        )


@register_source
class Official(CheckpointSource):
    name = "official"
    description = "a V-JEPA 1 .pth.tar or V-JEPA 2 .pt checkpoint of the official code"
    options = ("which", "arch", "heads", "predictor_heads", "frames", "crop")

    def read(self, path: Path, **options):
        return from_official(path, **options)
