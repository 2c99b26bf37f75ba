"""3D multi-block masks (V-JEPA) and random tube masks (VideoMAE) on a (T, H, W) token grid.

A generator's `sample(batch_size, generator)` returns a boolean TARGET mask (B, T, H, W):
True = masked (predicted), False = context (seen by the encoder).
"""

from __future__ import annotations

import math

import torch


class MultiBlockMask:
    """Target = union of `num_blocks` boxes; context = the rest.

    Box size (int(area * `spatial_scale`) tokens per frame, height/width ratio uniform in
    `aspect_ratio`, int(`temporal_scale` * T) frames) is drawn once per batch, so all samples
    of a batch have comparable context sizes; box positions are drawn per sample. These are
    the official V-JEPA sampler's rules. A sample whose boxes happen to cover everything is
    redrawn (counted in `resampled`).
    """

    def __init__(
        self,
        grid: tuple[int, int, int],
        num_blocks: int = 8,
        spatial_scale: float = 0.15,
        temporal_scale: float = 1.0,
        aspect_ratio: tuple[float, float] = (0.75, 1.5),
        max_tries: int = 100,
    ):
        self.grid, self.num_blocks = tuple(grid), num_blocks
        self.spatial_scale, self.temporal_scale, self.aspect_ratio = spatial_scale, temporal_scale, aspect_ratio
        self.max_tries = max_tries
        self.resampled = 0

    def block_size(self, aspect: float) -> tuple[int, int, int]:
        """Box (t, h, w) for a given aspect ratio; public so tests can derive expectations."""
        frames, height, width = self.grid
        area = int(self.spatial_scale * height * width)
        h = max(1, min(round(math.sqrt(area * aspect)), height))
        w = max(1, min(round(math.sqrt(area / aspect)), width))
        t = max(1, min(int(frames * self.temporal_scale), frames))
        return t, h, w

    def sample_aspect(self, generator: torch.Generator) -> float:
        lo, hi = self.aspect_ratio
        return lo + (hi - lo) * torch.rand((), generator=generator).item()

    def _boxes(self, batch: int, size: tuple[int, int, int], generator: torch.Generator) -> torch.Tensor:
        inside = None
        for extent, span, axis in zip(self.grid, size, range(3)):
            start = torch.randint(0, extent - span + 1, (batch, self.num_blocks, 1), generator=generator)
            coord = torch.arange(extent).view(1, 1, extent)
            hit = (coord >= start) & (coord < start + span)  # (B, K, extent)
            shape = [batch, self.num_blocks, 1, 1, 1]
            shape[2 + axis] = extent
            hit = hit.view(shape)
            inside = hit if inside is None else inside & hit
        return inside.any(dim=1)  # (B, T, H, W)

    def sample(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        size = self.block_size(self.sample_aspect(generator))
        masked = self._boxes(batch, size, generator)
        for _ in range(self.max_tries):
            full = masked.flatten(1).all(dim=1)
            if not full.any():
                return masked
            self.resampled += int(full.sum())
            masked[full] = self._boxes(int(full.sum()), size, generator)
        raise RuntimeError(
            f"multi-block mask {self.num_blocks}x{self.spatial_scale} keeps covering the whole "
            f"{self.grid} grid; lower num_blocks or spatial_scale"
        )


class TubeMask:
    """Exactly round(ratio * H * W) spatial positions masked, the same ones in every frame."""

    def __init__(self, grid: tuple[int, int, int], ratio: float = 0.9):
        self.grid, self.ratio = tuple(grid), ratio
        positions = grid[1] * grid[2]
        self.num_masked = min(max(round(ratio * positions), 1), positions - 1)
        self.resampled = 0

    def sample(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        frames, height, width = self.grid
        order = torch.rand(batch, height * width, generator=generator).argsort(dim=1)
        masked = torch.zeros(batch, height * width, dtype=torch.bool)
        masked.scatter_(1, order[:, : self.num_masked], True)
        return masked.view(batch, 1, height, width).expand(batch, frames, height, width).clone()
