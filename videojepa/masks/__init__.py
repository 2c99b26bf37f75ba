"""Mask generators (3D multi-block, random tube), the mask collator and mask statistics."""

from videojepa.masks.build import build_generator, build_mask_generators, token_grid
from videojepa.masks.collator import MaskCollator, MaskIndices, masks_to_indices
from videojepa.masks.multiblock import MultiBlockMask, TubeMask
from videojepa.masks.stats import mask_statistics

__all__ = [
    "MultiBlockMask",
    "TubeMask",
    "MaskCollator",
    "MaskIndices",
    "masks_to_indices",
    "build_generator",
    "build_mask_generators",
    "token_grid",
    "mask_statistics",
]
