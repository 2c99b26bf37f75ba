"""The online probe: a cheap frozen evaluation of the encoder while it pretrains (`train.online_probe`).

    hook = OnlineProbe(cfg)                       # reads and checks the small labelled train / val pair now
    Trainer(cfg, hooks=[hook]).fit()              # what `videojepa pretrain` does when train.online_probe is set
    hook(step, encoder)                           # {"online_probe/linear_frames_top1": 0.62, ...}

Every `train.online_probe.every` steps the trainer hands it the exported encoder (`videojepa.train.hooks`). It
encodes both sets once (the evaluation view of one clip per video, the pretraining data section's clip protocol),
pools the tokens as each kind reads them (`linear_frames`: each time step's mean token, concatenated in time
order; `knn`: the mean token; ...), trains the linear kinds for a few epochs on those fixed features (one AdamW
probe, cosine lr, `videojepa.eval.grid`), fits kNN (with probe.knn_k and knn_temperature's defaults), and
returns each kind's validation top-1. It draws no random number from the global generators (its data keys and
probe seeds are fixed), and the trainer restores every random state and module mode around it anyway, so the
training's losses are the same with or without it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import default_collate

from videojepa.data.build import build_dataset
from videojepa.errors import ConfigError
from videojepa.eval.config import ProbeSection
from videojepa.eval.encoders import accuracy, task_labels
from videojepa.eval.features import as_clips, encode, pool_features
from videojepa.eval.grid import ProbeGrid, fit, grid_cells
from videojepa.eval.probes import get_probe_kind, list_probe_kinds

KEY = "train.online_probe"


class OnlineProbe:
    """A step hook (`videojepa.train.hooks.StepHook`) that probes the encoder on a small labelled pair."""

    name = "online_probe"
    key = KEY

    def __init__(self, cfg):
        s = cfg.train.online_probe
        if s is None:
            raise ConfigError(KEY, "is not set")
        for kind in s.kinds:
            if kind not in list_probe_kinds() or get_probe_kind(kind).pools == "none":
                pooled = [k for k in list_probe_kinds() if get_probe_kind(k).pools != "none"]
                raise ConfigError(
                    f"{KEY}.kinds", f"{kind!r} is not a probe kind on pooled features; allowed: {', '.join(pooled)}"
                )
        self.settings, self.every = s, s.every
        # the evaluation view of one clip per video, the pretraining clip protocol; read in this process
        data = cfg.data.model_copy(
            update={"num_clips": 1, "num_views": 1, "num_workers": 0, "train": None, "val": None}
        )
        self.train_ds = build_dataset(s.train, data, train=False, key=f"{KEY}.train")
        self.val_ds = build_dataset(s.val, data, train=False, key=f"{KEY}.val", on_bad="exclude")
        self.num_classes, _ = task_labels(self.train_ds, self.val_ds, None, KEY, f"{KEY}.num_classes", "probing")
        self.kinds = {kind: get_probe_kind(kind) for kind in s.kinds}
        self.poolings = sorted({kind.input(s.frame_grid) for kind in self.kinds.values()})
        self.seed = cfg.run.seed

    def features(self, encoder, dataset) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Every pooling the kinds read, of every readable video of `dataset` ({pooling: (N, F)}), and the labels."""
        s = self.settings
        pooled: dict[str, list[torch.Tensor]] = {p: [] for p in self.poolings}
        labels = []
        for batch in self.batches(dataset):
            keep = batch["index"] >= 0  # an unreadable file comes back with index -1
            if not keep.any():
                continue
            clips = as_clips(batch["video"][keep])[:, 0]
            tokens = encode(encoder, clips, (-1,), s.precision)
            grid = encoder.grid(*clips.shape[-3:])
            for pooling in self.poolings:
                pooled[pooling].append(pool_features(tokens, pooling, grid).cpu())
            labels.append(batch["label"][keep])
        return {p: torch.cat(v) for p, v in pooled.items()}, torch.cat(labels).long()

    def batches(self, dataset) -> Iterator[dict]:
        """The dataset's items in order, keyed (index, 0, 0) so that nothing is drawn from the global generators."""
        size = self.settings.batch_size
        for start in range(0, len(dataset), size):
            yield default_collate([dataset[(i, 0, 0)] for i in range(start, min(start + size, len(dataset)))])

    def __call__(self, step: int, encoder: torch.nn.Module) -> dict:
        s = self.settings
        train, train_labels = self.features(encoder, self.train_ds)
        val, val_labels = self.features(encoder, self.val_ds)
        record = {}
        for name, kind in self.kinds.items():
            pooling = kind.input(s.frame_grid)
            if kind.trains:
                scores = self.train_linear(kind, train[pooling], train_labels, val[pooling])
            else:
                scores = kind.fit(train[pooling], train_labels, self.num_classes, ProbeSection()).scores(val[pooling])
            record[f"online_probe/{name}_top1"] = float(accuracy(scores, val_labels, 1))
        return record

    def train_linear(self, kind, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor) -> torch.Tensor:
        """A linear probe trained on fixed features (cosine lr, AdamW); its validation logits."""
        s = self.settings
        steps = s.epochs * -(-len(y) // s.batch_size)
        make = lambda: kind.build(x.shape[-1], self.num_classes, None)  # noqa: E731
        grid = ProbeGrid(make, grid_cells([s.lr], [s.weight_decay]), self.seed, steps)

        def epoch_batches(epoch: int):
            order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
            for idx in order.split(s.batch_size):
                yield x[idx], y[idx]

        with torch.enable_grad():  # the trainer runs hooks under no_grad; the probe itself learns
            fit(grid, s.epochs, epoch_batches)
        return grid.logits(x_val)[0]
