"""Model registry: `create_model("vit_large", **overrides)` and parameter counts.

Sizes follow V-JEPA / V-JEPA 2 (width / depth / heads); the `vit_pico`..`vit_micro`
presets are sized for CPU demos and tests. The `vjepa2_*` entries are the released V-JEPA 2
encoders (their RoPE layout; the ViT-g has 22 heads, where V-JEPA 1's has 16): official weight
files do not store the head count, so the converter takes it from here. `RELEASED` holds the clip
protocol those weights were trained with.
"""

from __future__ import annotations

import torch

from videojepa.errors import UserError
from videojepa.models.frames import FrameEncoder
from videojepa.models.vit import VisionTransformer

ARCHITECTURES: dict[str, dict] = {
    "vit_pico": dict(embed_dim=64, depth=2, num_heads=2),
    "vit_nano": dict(embed_dim=96, depth=4, num_heads=3),
    "vit_micro": dict(embed_dim=192, depth=6, num_heads=3),
    "vit_tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "vit_small": dict(embed_dim=384, depth=12, num_heads=6),
    "vit_base": dict(embed_dim=768, depth=12, num_heads=12),
    "vit_large": dict(embed_dim=1024, depth=24, num_heads=16),
    "vit_huge": dict(embed_dim=1280, depth=32, num_heads=16),
    "vit_giant": dict(embed_dim=1408, depth=40, num_heads=16, mlp_hidden=1408 * 48 // 11),
    "vit_gigantic": dict(embed_dim=1664, depth=48, num_heads=16, mlp_hidden=8192),
    "vjepa2_vitl": dict(embed_dim=1024, depth=24, num_heads=16, pos_embed="rope_vjepa2"),
    "vjepa2_vith": dict(embed_dim=1280, depth=32, num_heads=16, pos_embed="rope_vjepa2"),
    "vjepa2_vitg": dict(embed_dim=1408, depth=40, num_heads=22, mlp_hidden=1408 * 48 // 11, pos_embed="rope_vjepa2"),
}

# Released weights: clip protocol (V-JEPA 2: 64 frames at 256 px) and the predictor that comes with them.
_VJEPA2_PREDICTOR = dict(embed_dim=384, depth=12, num_heads=12, num_mask_tokens=10, default_mask_index=1)
RELEASED: dict[str, dict] = {
    name: dict(frames_per_clip=64, crop_size=256, predictor=_VJEPA2_PREDICTOR)
    for name in ("vjepa2_vitl", "vjepa2_vith", "vjepa2_vitg")
}


def find_architecture(embed_dim: int, depth: int, num_heads: int, mlp_hidden: int, pos_embed: str) -> str | None:
    """The registry name of exactly these sizes and position encoding (for converted weights), or None."""
    for name, spec in ARCHITECTURES.items():
        if (
            spec["embed_dim"],
            spec["depth"],
            spec["num_heads"],
            spec.get("mlp_hidden", 4 * spec["embed_dim"]),
            spec.get("pos_embed", "rope"),
        ) == (embed_dim, depth, num_heads, mlp_hidden, pos_embed):
            return name
    return None


def list_models() -> list[str]:
    return list(ARCHITECTURES)


def create_model(name: str, **overrides) -> VisionTransformer:
    """Build an encoder by name; keyword overrides (patch_size, pos_embed, ...) win."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(ARCHITECTURES)}")
    model = VisionTransformer(**{**ARCHITECTURES[name], **overrides})
    model.arch["name"] = name
    return model


def build_encoder(model_cfg, **overrides) -> VisionTransformer:
    """The encoder a config's `model` section describes (pretraining, probing, FLOPs, teachers alike).

    `model_cfg` has `name`, `patch_size`, `tubelet_size`, `pos_embed` and `drop_path`; keyword overrides
    (e.g. activation_checkpointing) win.
    """
    settings = dict(
        patch_size=model_cfg.patch_size,
        tubelet_size=model_cfg.tubelet_size,
        pos_embed=model_cfg.pos_embed,
        drop_path=model_cfg.drop_path,
    )
    return create_model(model_cfg.name, **{**settings, **overrides})


def encoder_from_arch(arch: dict) -> VisionTransformer:
    """The encoder an architecture dict describes (an encoder card's `arch`, or a converter's reading of
    another format's weights); `name` is carried along, not a constructor argument. `kind: frames` is an image
    model applied to every frame (`videojepa.models.frames`)."""
    kind = FrameEncoder if arch.get("kind") == "frames" else VisionTransformer
    try:
        encoder = kind(**{k: v for k, v in arch.items() if k not in ("name", "kind")})
    except (TypeError, ValueError) as err:
        raise UserError(f"architecture {arch} cannot be built: {err}") from None
    encoder.arch["name"] = arch.get("name")
    return encoder


def non_embedding_parameters(model: torch.nn.Module) -> int:
    """Parameters outside the tubelet (patch) embedding: the N of the 6*N*D compute rule."""
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith("patch_embed."))


def count_parameters(model_or_name: torch.nn.Module | str, non_embedding: bool = False, **overrides) -> int:
    """Parameter count; a name is built on the meta device (no memory, no time).

    non_embedding=True leaves out the tubelet (patch) embedding, the convention of the
    6*N*D compute rule (Kaplan et al. 2020) that the FLOPs accountant follows.
    """
    if isinstance(model_or_name, str):
        with torch.device("meta"):
            model_or_name = create_model(model_or_name, **overrides)
    if non_embedding:
        return non_embedding_parameters(model_or_name)
    return sum(p.numel() for p in model_or_name.parameters())
