"""Frozen-encoder features: forward passes, pooling, and a feature cache on disk.

    tokens = encode(encoder, video, layers=[-1])           # (B, S, N, D) float32, no grad, eval mode
    feats = extract_dataset(encoder, dataset, batch_size=16, passes=2, pooling="none")
    feats.features.shape                                    # (passes, videos, S, N, D); S = clips x views
    pool_features(tokens, "frames:2", grid=(8, 8, 8))       # (B, S, 8*2*2*D): each time step on a 2x2 grid
    feats = load_or_extract(path, key, lambda: extract_dataset(...))   # reuse a matching cache file
    source = FeatureSource(keep_clips=True)   # source.extract(...) as extract_dataset, decoding each video
                                              # once for all the encoders it extracts with

`video` is a clip batch (B, C, T, H, W) or a multi-clip/view batch (B, S, C, T, H, W) as the datasets
give it. Several `layers` are concatenated along channels. Tokens are ordered (t, h, w).
A cache file is a safetensors file holding `features` and `indices` (which file of the dataset each
row came from: a bad file of a training set is replaced by another, a bad file of a validation set
(`on_bad="exclude"`) has no row), with the cache key in its metadata. The key hashes
everything the features depend on (encoder, file list, protocol, layers, passes, seed) but not the
labels, so tasks that label the same videos differently share one file; a changed input never reuses
a stale one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from videojepa.data.loader import build_loader
from videojepa.errors import UserError
from videojepa.utils.files import atomic_path

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
POOLINGS = ("none", "mean", "frame")
# What a probe reads (`pool_features`): every token, their mean, or each time step's tokens averaged over a
# coarse spatial grid and concatenated in time order ("frames" = "frames:1", "frames:G" for a G x G grid).
PROBE_POOLINGS = ("none", "mean", "frames")
# DataConfig fields that change how items are loaded, not what they contain.
LOADER_ONLY = ("train", "val", "num_workers", "decode_threads", "worker_timeout", "max_bad_fraction")


def prepare_encoder(encoder: torch.nn.Module, precision: str = "fp32") -> torch.nn.Module:
    """A frozen encoder for feature extraction: eval mode, no gradients, and for bf16 its weights
    converted to bfloat16 (measured 5-15% faster on CPU than autocast around fp32 weights)."""
    encoder.eval().requires_grad_(False)
    return encoder.to(DTYPES[precision]) if precision != "fp32" else encoder


def autocast(encoder: torch.nn.Module, precision: str):
    """Autocast to `precision` for an encoder whose weights are still fp32; otherwise nothing."""
    param = next(encoder.parameters())
    if precision == "fp32" or param.dtype != torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(param.device.type, dtype=DTYPES[precision])


@torch.no_grad()
def encode(
    encoder: torch.nn.Module, video: torch.Tensor, layers: Sequence[int] = (-1,), precision: str = "fp32"
) -> torch.Tensor:
    """Tokens of every clip: (B, C, T, H, W) -> (B, N, D*L); (B, S, C, T, H, W) -> (B, S, N, D*L); float32.

    A bf16 `precision` runs under autocast, or directly when the encoder's weights are already bf16
    (`prepare_encoder`).
    """
    if video.ndim not in (5, 6):
        raise ValueError(f"expected clips (B, C, T, H, W) or (B, S, C, T, H, W), got shape {tuple(video.shape)}")
    lead = video.shape[:-4]
    param = next(encoder.parameters())
    clips = video.reshape(-1, *video.shape[-4:]).to(param.device, param.dtype, non_blocking=True)
    encoder.eval()
    with autocast(encoder, precision):
        outs = encoder(clips, layers=list(layers))
    tokens = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
    return tokens.float().reshape(*lead, *tokens.shape[1:])


def pool(tokens: torch.Tensor, kind: str, frames: int = 1) -> torch.Tensor:
    """Pool (..., N, D) tokens ordered (t, h, w): `none` keeps them, `mean` -> (..., D),
    `frame` -> (..., frames, D) (mean over each time step's tokens; `frames` = temporal grid size)."""
    if kind == "none":
        return tokens
    if kind == "mean":
        return tokens.mean(-2)
    if kind == "frame":
        N, D = tokens.shape[-2:]
        return tokens.reshape(*tokens.shape[:-2], frames, N // frames, D).mean(-2)
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {kind!r}")


def parse_pooling(pooling: str) -> tuple[str, int]:
    """ "none" / "mean" / "frames" / "frames:G" -> (kind, G); G is 1 except for frames:G."""
    kind, _, cells = pooling.partition(":")
    if kind not in PROBE_POOLINGS or (cells and (kind != "frames" or not cells.isdigit() or int(cells) < 1)):
        raise ValueError(f"pooling must be none, mean, frames or frames:G (G >= 1), got {pooling!r}")
    return kind, int(cells or 1)


def pool_features(tokens: torch.Tensor, pooling: str, grid: tuple[int, int, int]) -> torch.Tensor:
    """What a probe reads from (..., N, D) tokens ordered (t, h, w) on the token `grid` (T', H', W'):
    "none" keeps them; "mean" -> (..., D); "frames:G" -> (..., T' * G * G * D): each time step's tokens
    averaged over a G x G grid of spatial cells (adaptive: cells may be uneven), concatenated in time order.
    A mean keeps no order: with relative (RoPE) positions a token's values carry no absolute place, so
    "mean" sees neither when nor where; "frames" keeps when, and G > 1 keeps a coarse where."""
    kind, cells = parse_pooling(pooling)
    if kind == "none":
        return tokens
    if kind == "mean":
        return tokens.mean(-2)
    T, H, W = grid
    lead, (N, D) = tokens.shape[:-2], tokens.shape[-2:]
    if N != T * H * W:
        raise ValueError(f"{N} tokens do not fill the token grid {T}x{H}x{W}")
    if cells > min(H, W):
        raise ValueError(f"pooling {pooling!r} asks for a {cells}x{cells} grid of a {H}x{W} token frame")
    x = tokens.reshape(-1, T, H, W, D).permute(0, 1, 4, 2, 3).reshape(-1, D, H, W)  # (B*T, D, H, W)
    x = torch.nn.functional.adaptive_avg_pool2d(x.float(), cells)  # (B*T, D, G, G)
    return x.reshape(*lead, T * D * cells * cells).to(tokens.dtype)


def as_clips(video: torch.Tensor) -> torch.Tensor:
    """A dataset batch as (B, S, C, T, H, W): single clips get S = 1."""
    return video.unsqueeze(1) if video.ndim == 5 else video


def pooling_of(pooled: bool | str) -> str:
    """The pooling name of a `pooled` flag (True: "mean") or of a name."""
    return ("mean" if pooled else "none") if isinstance(pooled, bool) else pooled


def encode_batches(
    encoder,
    loader,
    layers: Sequence[int],
    precision: str,
    pooling: str | bool,
    desc: str = "",
    total: int | None = None,
    round_to: torch.dtype | None = None,
    chunk: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(features (B, S, N, D) or pooled (B, S, F), labels, file indices) for every batch of a dataset loader
    (or any iterable of its batches; `total`: how many, for the progress bar). `pooling`: see
    `pool_features` (True means "mean"). `round_to`: the tokens are rounded to this dtype before pooling,
    so that features pooled now equal those pooled later from tokens stored in it. `chunk`: encode at most this
    many videos per forward (a large training batch of many clips each), their features joined."""
    pooling = pooling_of(pooling)
    for batch in tqdm(loader, desc=desc, leave=False, disable=None, unit="batch", total=total):
        clips = as_clips(batch["video"])
        grid = encoder.grid(*clips.shape[-3:]) if pooling.startswith("frames") else None
        parts = []
        for part in clips.split(chunk or len(clips)):
            tokens = encode(encoder, part, layers, precision)
            if round_to is not None and pooling != "none":
                tokens = tokens.to(round_to).float()
            parts.append(pool_features(tokens, pooling, grid))
        yield torch.cat(parts) if len(parts) > 1 else parts[0], batch["label"], batch["index"]


@dataclass
class FeatureSet:
    """Features of a dataset: (passes, videos, S, N, D) or pooled (passes, videos, S, F); `indices`
    (passes, videos): the dataset file each row came from; `labels` (passes, videos), see `label`."""

    features: torch.Tensor
    indices: torch.Tensor
    labels: torch.Tensor | None = None

    def label(self, labels: Sequence[int]) -> FeatureSet:
        """Set `labels` from the dataset's per-file labels."""
        self.labels = torch.as_tensor(labels, dtype=torch.long)[self.indices]
        return self

    @property
    def passes(self) -> int:
        return self.features.shape[0]

    def __len__(self) -> int:
        return self.features.shape[1]

    def batches(self, batch_size: int, pass_index: int = 0, generator: torch.Generator | None = None):
        """(features float32, labels) batches of one pass; shuffled when a generator is given."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        for idx in order.split(batch_size):
            yield self.features[pass_index, idx].float(), self.labels[pass_index, idx]


class FeatureSource:
    """Reads datasets' clips and encodes them: `extract` (what `extract_dataset` does with a fresh source).

    `keep_clips=True` keeps the decoded clip batches of datasets without augmentation in memory, so that
    the next encoder evaluated with this source does not decode them again (the demo probes five encoders
    on the same videos). It holds every clip as the loader gives it (float32): ~1.3 GB for the demo's 1600
    clips of 16x64x64. Augmented clips differ at every read and are never kept.
    """

    def __init__(self, keep_clips: bool = False):
        self.keep_clips = keep_clips
        self.kept: dict[str, list[dict]] = {}  # a complete un-augmented pass by the files, settings, batch size

    def extract(
        self,
        encoder,
        dataset,
        batch_size: int,
        layers: Sequence[int] = (-1,),
        precision: str = "fp32",
        pooling: str | bool = "none",
        passes: int = 1,
        seed: int = 0,
        dtype: str = "fp32",
        desc: str = "features",
    ) -> FeatureSet:
        """Encode every video of `dataset` `passes` times (pass p uses the data pipeline's epoch-p augmentation);
        `pooling`: see `pool_features`."""
        loader = build_loader(dataset, batch_size, dataset.cfg, seed, drop_last=False, shuffle=False)
        n = len(dataset)
        features, indices = None, torch.empty(passes, n, dtype=torch.long)
        for p in range(passes):
            row = 0
            batches = self.clip_batches(dataset, loader, batch_size, p)
            for feats, _, index in encode_batches(
                encoder,
                batches,
                layers,
                precision,
                pooling,
                f"{desc} {p + 1}/{passes}",
                total=len(loader),
                round_to=DTYPES[dtype],
            ):
                if features is None:
                    features = torch.empty(passes, n, *feats.shape[1:], dtype=DTYPES[dtype])
                features[p, row : row + len(index)] = feats.to("cpu", features.dtype)
                indices[p, row : row + len(index)] = index
                row += len(index)
        if dataset.on_bad == "exclude":  # unreadable files (index -1) get no row, in any pass
            keep = (indices >= 0).all(0)
            if not keep.any():
                raise UserError(f"none of the {n} files of {dataset.source or 'the dataset'} could be read")
            if not keep.all():
                features, indices = features[:, keep], indices[:, keep]
        return FeatureSet(features, indices).label([e.label for e in dataset.entries])

    def clip_batches(self, dataset, loader, batch_size: int, epoch: int) -> Iterator[dict]:
        """The loader's batches of pass `epoch`, from memory when this source kept them before."""
        loader.set_epoch(epoch)
        if not self.keep_clips or dataset.train:
            yield from loader
            return
        key = cache_key(**dataset_contents(dataset), batch_size=batch_size, epoch=epoch)
        if key in self.kept:
            yield from self.kept[key]
            return
        kept = []
        for batch in loader:
            # cloned: a worker's batch lives in shared memory, which may be small (a container's /dev/shm)
            kept.append({k: batch[k].clone() for k in ("video", "label", "index")})
            yield batch
        self.kept[key] = kept  # only complete passes are kept


def extract_dataset(
    encoder,
    dataset,
    batch_size: int,
    layers: Sequence[int] = (-1,),
    precision: str = "fp32",
    pooling: str | bool = "none",
    passes: int = 1,
    seed: int = 0,
    dtype: str = "fp32",
    desc: str = "features",
) -> FeatureSet:
    """`FeatureSource.extract` reading every clip from the data."""
    return FeatureSource().extract(encoder, dataset, batch_size, layers, precision, pooling, passes, seed, dtype, desc)


def dataset_contents(dataset) -> dict:
    """What a dataset's items are made of: its files (not their labels: tasks may label the same files
    differently) and the data settings that shape a clip; for cache keys."""
    return {
        "entries": [(e.path, e.start_frame, e.end_frame) for e in dataset.entries],
        "on_bad": dataset.on_bad,
        "data": {k: v for k, v in dataset.cfg.model_dump().items() if k not in LOADER_ONLY},
    }


def cache_key(**parts) -> str:
    """A short hash of everything features depend on."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_cache(path: Path, key: str) -> FeatureSet | None:
    """The FeatureSet cached at `path` if it holds features for `key`, else None (a damaged file, or one made
    for other inputs, warns when its key matches)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    if not Path(path).is_file():
        return None
    # Only a cache made for other inputs (another key) or one that is not a complete safetensors file of
    # ours is ignored, with a warning; any other error (permissions, I/O) stops the run.
    try:
        with safe_open(str(path), framework="pt") as f:
            stored = (f.metadata() or {}).get("key")
            names = set(f.keys())
    except SafetensorError as err:
        warnings.warn(f"feature cache {path} is damaged ({err}); computing the features again", stacklevel=3)
        return None
    if stored == key and names == {"features", "indices"}:
        tensors = load_file(str(path))
        return FeatureSet(tensors["features"], tensors["indices"])
    if stored == key:
        warnings.warn(
            f"feature cache {path} holds {sorted(names)}, not features and indices; computing again", stacklevel=3
        )
    return None


def load_or_extract(path: Path | None, key: str, compute: Callable[[], FeatureSet]) -> tuple[FeatureSet, bool]:
    """The cached FeatureSet at `path` if its key matches, else `compute()` (saved to `path` when given).

    Returns (features, whether they came from the cache); `labels` is not stored: see `FeatureSet.label`.
    """
    from safetensors.torch import save_file

    cached = read_cache(path, key) if path is not None else None
    if cached is not None:
        return cached, True
    result = compute()
    if path is not None:
        with atomic_path(path) as tmp:
            save_file(
                {"features": result.features.contiguous(), "indices": result.indices}, str(tmp), metadata={"key": key}
            )
    return result, False
