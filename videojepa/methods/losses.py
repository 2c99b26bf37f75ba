"""Losses shared by the methods, and the pixel targets of the pixel methods."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """x (B, N, D), ids (B, K) -> (B, K, D)."""
    return x.gather(1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def normalize_features(x: torch.Tensor) -> torch.Tensor:
    """Parameter-free LayerNorm over channels: the regression target of the latent methods."""
    return F.layer_norm(x.float(), (x.shape[-1],), eps=1e-6)


def latent_loss(pred: torch.Tensor, target: torch.Tensor, exponent: float = 1.0) -> torch.Tensor:
    """mean |pred - target|^p over tokens and channels (p = 1: V-JEPA's L1)."""
    diff = (pred.float() - target).abs()
    return (diff if exponent == 1.0 else diff.pow(exponent)).mean()


def patchify(video: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, N, tubelet * patch * patch, C), tokens in (t, h, w) order."""
    B, C, T, H, W = video.shape
    x = video.reshape(B, C, T // tubelet, tubelet, H // patch, patch, W // patch, patch)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # B, t, h, w, dt, dh, dw, C
    return x.reshape(B, -1, tubelet * patch * patch, C)


def pixel_targets(video: torch.Tensor, tubelet: int, patch: int, mean, std, norm: str = "tubelet") -> torch.Tensor:
    """VideoMAE targets: each tubelet's pixels, normalised per channel by the tubelet's own
    mean and unbiased std (eps 1e-6), after undoing the input normalisation; `norm="none"`: the pixels as
    the encoder sees them (normalised by the input's mean and std only).
    Returns (B, N, tubelet * patch * patch * C)."""
    if norm == "none":
        return patchify(video.float(), tubelet, patch).flatten(2)
    if norm != "tubelet":
        raise ValueError(f"pixel target norm must be tubelet or none, got {norm!r}")
    # per channel with Python numbers: a tensor of them would be copied to the device (a host sync) every step
    pixels = torch.stack([video[:, c].float() * s + m for c, (m, s) in enumerate(zip(mean, std))], dim=1)
    pixels = patchify(pixels, tubelet, patch)
    pixels = (pixels - pixels.mean(dim=2, keepdim=True)) / (
        pixels.var(dim=2, unbiased=True, keepdim=True).sqrt() + 1e-6
    )
    return pixels.flatten(2)


def pixel_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred.float(), target)


def variance_covariance(x: torch.Tensor) -> torch.Tensor:
    """VICReg's anti-collapse penalty on features (..., D) taken over all leading positions, with VICReg's
    weights (variance 25, covariance 1) divided by 25: the mean hinge max(0, 1 - std) of each channel, plus
    the squared off-diagonal covariances summed, divided by D and by 25. (With equal weights the covariance
    term wins by shrinking every feature towards 0.)

    The statistics are those of the whole batch: under torchrun every rank's sums are added (an all-reduce
    that gradients flow back through), so N ranks give one process's loss and gradients. Micro-batches of
    gradient accumulation each have their own statistics."""
    z = x.float().flatten(0, -2)
    count = z.new_full((), len(z))  # filled on the device: no host-to-device copy
    total, products = z.sum(0), z.T @ z
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # the functional all-reduce: its backward all-reduces the gradients (torch >= 2.13)
        from torch.distributed._functional_collectives import all_reduce, wait_tensor

        world = torch.distributed.group.WORLD
        torch.distributed.all_reduce(count)
        total = wait_tensor(all_reduce(total, "sum", world))
        products = wait_tensor(all_reduce(products, "sum", world))
    mean = total / count
    cov = (products - count * torch.outer(mean, mean)) / (count - 1).clamp(min=1)
    var = cov.diagonal()
    variance = F.relu(1.0 - (var.clamp(min=0) + 1e-4).sqrt()).mean()
    off_diagonal = cov.pow(2).sum() - var.pow(2).sum()
    return variance + off_diagonal / (25.0 * z.shape[-1])


def channel_std(x: torch.Tensor) -> torch.Tensor:
    """Mean over channels of each channel's std across all tokens: near 0 means collapse."""
    return x.detach().float().flatten(0, -2).std(dim=0).mean()
