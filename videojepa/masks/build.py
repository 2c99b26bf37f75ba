"""Mask generators from a config: the token grid follows from clip size, tubelet and patch."""

from __future__ import annotations

from videojepa.config.schema import MaskConfig, PretrainConfig
from videojepa.masks.multiblock import MultiBlockMask, TubeMask


def token_grid(cfg: PretrainConfig) -> tuple[int, int, int]:
    side = cfg.data.crop_size // cfg.model.patch_size
    return cfg.data.frames_per_clip // cfg.model.tubelet_size, side, side


def build_generator(mask: MaskConfig, grid: tuple[int, int, int]):
    if mask.kind == "tube":
        return TubeMask(grid, mask.ratio)
    return MultiBlockMask(grid, mask.num_blocks, mask.spatial_scale, mask.temporal_scale, mask.aspect_ratio)


def build_mask_generators(cfg: PretrainConfig) -> list:
    grid = token_grid(cfg)
    return [build_generator(m, grid) for m in cfg.masks]


def describe(mask: MaskConfig) -> str:
    if mask.kind == "tube":
        return f"tube {mask.ratio:g}"
    return f"multiblock {mask.num_blocks}x{mask.spatial_scale:g} t{mask.temporal_scale:g}"
