"""Frozen evaluation of an encoder on classification tasks: what `videojepa probe CONFIG` runs.

    from videojepa.config import load_config
    from videojepa.eval import ProbeConfig, run_probe
    results = run_probe(load_config("demo/probe", ["probe.checkpoint=runs/vjepa"], schema=ProbeConfig))

Per task: build the train and val datasets with the task's protocol, extract the validation features
once (pooled as the probe kind reads them; pooled features are made from a cached token file of the same
encoder and data when one is there, so the attentive probe and the cheap ones share one encoder pass), then
either fit a kNN classifier or train the whole lr x wd grid of probes in one pass
(`grid.ProbeGrid`) on cached training features (optionally several augmented copies) or on features
computed batch by batch with fresh random crops and flips. Every cell is scored on validation with
the multi-view protocol (`protocol`); the best cell's top-1 is the task's score. Results go to
`run.dir` as results.json and results.md (`report`), next to the resolved config.yaml.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from videojepa.data.config import DataConfig
from videojepa.errors import UserError
from videojepa.eval.config import ProbeConfig, TaskConfig
from videojepa.eval.features import (
    FeatureSet,
    FeatureSource,
    cache_key,
    dataset_contents,
    encode_batches,
    load_or_extract,
    pool_features,
    prepare_encoder,
    read_cache,
)
from videojepa.eval.grid import ProbeGrid, fit, grid_cells
from videojepa.eval.probes import KNN_KINDS, KNNClassifier, build_probe, probe_input
from videojepa.eval.protocol import eval_logits, training_batch
from videojepa.eval.report import SCHEMA, write_results
from videojepa.utils.device import resolve_device
from videojepa.utils.precision import resolve_precision


def probe_encoder(cfg: ProbeConfig) -> tuple[torch.nn.Module, dict, dict]:
    """The frozen encoder, a description of it for the results, and its identity for cache keys."""
    from videojepa.encoder_io import load_encoder, resolve_encoder_path
    from videojepa.models.registry import build_encoder, count_parameters

    if cfg.probe.checkpoint == "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.run.seed)
            encoder = build_encoder(cfg.model)
        identity = {"random_init": cfg.model.model_dump(), "seed": cfg.run.seed}
    else:
        path = resolve_encoder_path(cfg.probe.checkpoint)
        encoder = load_encoder(path)
        stat = path.stat()
        identity = {"file": str(path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns}
    encoder = prepare_encoder(encoder, cfg.probe.precision).to(resolve_device(cfg.run.device, "run.device"))
    arch = encoder.arch
    info = {
        k: arch.get(k) for k in ("name", "embed_dim", "depth", "num_heads", "patch_size", "tubelet_size", "pos_embed")
    }
    info.update(params=count_parameters(encoder), random_init=cfg.probe.checkpoint == "none")
    return encoder, info, identity


def check_protocol(encoder, data: DataConfig, task: str) -> None:
    """The clip must tile into the encoder's tubelets and patches; warn where the task's protocol differs from
    the one the encoder card records (normalisation, frames, crop)."""
    if data.crop_size % encoder.patch_size:
        raise UserError(
            f"data.crop_size={data.crop_size} (task {task}) is not divisible by the encoder's patch "
            f"size {encoder.patch_size}"
        )
    if data.frames_per_clip % encoder.tubelet_size:
        raise UserError(
            f"data.frames_per_clip={data.frames_per_clip} (task {task}) is not divisible by the encoder's "
            f"tubelet size {encoder.tubelet_size}"
        )
    card = encoder.card
    if card is None:  # a random-init encoder: no protocol to compare with
        return
    clip = card.clip
    recorded = {"mean": clip.mean, "std": clip.std, "frames_per_clip": clip.frames, "crop_size": clip.crop}
    task_values = {key: getattr(data, key) for key in recorded}
    task_values.update(mean=tuple(data.mean), std=tuple(data.std))
    differing = [
        f"data.{key}={task_values[key]} (encoder: {value})"
        for key, value in recorded.items()
        if value is not None and value != task_values[key]
    ]
    if differing:  # longer clips or other crops can be intended; other normalisation rarely is
        warnings.warn(
            f"task {task}: the protocol differs from the encoder card's ({card.source or card.method}): "
            + ", ".join(differing),
            stacklevel=2,
        )


# DataConfig key -> the encoder card's ClipProtocol field it defaults to
CARD_PROTOCOL = {
    "frames_per_clip": "frames",
    "frame_step": "frame_step",
    "fps": "fps",
    "crop_size": "crop",
    "mean": "mean",
    "std": "std",
}


def encoder_protocol(data: DataConfig, card, given) -> tuple[DataConfig, dict]:
    """The task's protocol with every clip key the user left at its default taken from the encoder card
    (frames, frame step or fps, crop, mean/std); returns it and what was taken. `given(key)` tells whether
    the user set `key`. frame_step and fps go together: setting either keeps both."""
    if card is None:
        return data, {}
    taken = {
        key: getattr(card.clip, field)
        for key, field in CARD_PROTOCOL.items()
        if not given(key) and getattr(card.clip, field) is not None
    }
    if given("frame_step") or given("fps"):
        taken.pop("frame_step", None), taken.pop("fps", None)
    elif "frame_step" in taken or "fps" in taken:
        taken.setdefault("fps", None)
    return (data.model_copy(update=taken) if taken else data), taken


def task_classes(task: TaskConfig, train_ds, val_ds) -> int:
    labels = [e.label for ds in (train_ds, val_ds) for e in ds.entries]
    if min(labels) < 0:
        raise UserError(
            f"task {task.name}: some files have no label (a flat folder or a list without labels); "
            "probing needs labelled data: a class-per-folder tree or a list with labels"
        )
    found = max(train_ds.num_classes, val_ds.num_classes)
    if task.num_classes is not None and max(labels) >= task.num_classes:
        raise UserError(f"task {task.name}: num_classes={task.num_classes} but the data has label {max(labels)}")
    return task.num_classes or found


def first_videos(dataset, count: int):
    """A dataset of the first `count` files of `dataset`'s list, with the same settings."""
    from videojepa.data.datasets import VideoDataset

    return VideoDataset(
        dataset.entries[:count],
        dataset.cfg,
        dataset.train,
        classes=dataset.classes,
        source=dataset.source,
        on_bad=dataset.on_bad,
        manifest=dataset.manifest,
        uint8=dataset.uint8,
    )


def cut_to_prefix(features: FeatureSet, count: int, on_bad: str) -> FeatureSet:
    """The rows of a whole list's features that belong to its first `count` files: the first `count` rows
    when every file has a row (bad ones replaced), else the rows of files numbered below `count`."""
    if on_bad == "exclude":
        keep = (features.indices < count).all(0)
        return FeatureSet(features.features[:, keep], features.indices[:, keep])
    return FeatureSet(features.features[:, :count], features.indices[:, :count])


def accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k accuracy per leading row: logits (..., B, C), labels (B,) -> (...)."""
    top = logits.topk(k, dim=-1).indices
    return (top == labels[:, None]).any(-1).float().mean(-1)


def prepare_features(grid: ProbeGrid, feats: FeatureSet, chunk: int = 64) -> FeatureSet:
    """Fixed features through the grid's parameter-free `prepare` (the attentive probe's layer norm) once,
    instead of once per batch of every epoch; float32, in place when they already are (one copy in memory).
    The result is what `grid.step` and `grid.logits` take."""
    x = feats.features
    device = next(grid.parameters()).device
    with torch.no_grad():
        sample = x[0, :1].to(device).float()
        if grid.prepare(sample) is sample:  # nothing to prepare (linear probes, self-attention blocks first)
            return feats
        out = x if x.dtype == torch.float32 else torch.empty(x.shape, dtype=torch.float32)
        for p in range(x.shape[0]):
            for i in range(0, x.shape[1], chunk):
                out[p, i : i + chunk] = grid.prepare(x[p, i : i + chunk].to(device).float()).cpu()
    return FeatureSet(out, feats.indices, feats.labels)


class TaskRunner:
    """Evaluates one task; see the module docstring."""

    def __init__(
        self,
        cfg: ProbeConfig,
        encoder,
        identity: dict,
        task: TaskConfig,
        data: DataConfig,
        log: Callable[[str], None],
        source: FeatureSource,
    ):
        from videojepa.data.datasets import build_dataset

        self.cfg, self.encoder, self.identity, self.task, self.data, self.log = cfg, encoder, identity, task, data, log
        self.source = source
        check_protocol(encoder, data, task.name)
        kind, feat = cfg.probe.kind, cfg.features
        self.pooling = probe_input(kind, cfg.probe.frame_grid)
        self.knn = kind in KNN_KINDS
        self.augment = not self.knn and (not feat.cache or feat.augmentations > 0)
        where = f"tasks.{[t.name for t in cfg.tasks].index(task.name)}" if cfg.tasks else "data"
        self.train_ds = build_dataset(task.train, data, train=self.augment, key=f"{where}.train")
        # Validation never substitutes a bad file by another one (that would count a video twice): bad files
        # are excluded from the score and reported.
        self.val_ds = build_dataset(task.val, data, train=False, key=f"{where}.val", on_bad="exclude")
        self.val_excluded: list[str] = []
        self.num_classes = task_classes(task, self.train_ds, self.val_ds)
        # features.train_videos / val_videos: probe a prefix of each list; the whole list stays known so that
        # its cached features can be cut to the prefix
        self.whole = {}
        for split, limit in (("train", feat.train_videos), ("val", feat.val_videos)):
            dataset = self.train_ds if split == "train" else self.val_ds
            if limit is not None and limit < len(dataset):
                self.whole[split] = dataset
                setattr(self, f"{split}_ds", first_videos(dataset, limit))
        self.K, self.V = data.num_clips, data.num_views
        self.cache_dir = Path(feat.dir or Path(cfg.run.dir) / "features")
        self.seconds = {"features": 0.0, "train": 0.0, "eval": 0.0}
        self.cached = {"train": False, "val": False}

    def feature_key(self, dataset, passes: int, pooling: str) -> str:
        cfg = self.cfg
        return cache_key(
            encoder=self.identity,
            **dataset_contents(dataset),
            train=dataset.train,
            passes=passes,
            layers=cfg.probe.layers,
            precision=cfg.probe.precision,
            pooling=pooling,
            dtype=cfg.features.dtype,
            seed=cfg.run.seed if dataset.train else None,
        )

    def features(self, split: str, dataset, passes: int, to_disk: bool) -> FeatureSet:
        cfg = self.cfg
        key = self.feature_key(dataset, passes, self.pooling)
        path = self.cache_dir / f"{split}-{key}.safetensors" if to_disk else None
        start = time.perf_counter()

        def extract() -> FeatureSet:
            reused = self.reuse_cached(split, dataset, passes) if to_disk else None
            if reused is not None:
                return reused
            return self.source.extract(
                self.encoder,
                dataset,
                cfg.features.batch_size,
                cfg.probe.layers,
                cfg.probe.precision,
                self.pooling,
                passes,
                cfg.run.seed,
                cfg.features.dtype,
                desc=f"{self.task.name} {split}",
            )

        result, hit = load_or_extract(path, key, extract)
        # row indices point into the whole list when the features were cut from it (a bad training file may
        # have been replaced by one past the prefix); a prefix's own indices agree with the whole list's
        result.label([e.label for e in self.whole.get(split, dataset).entries])
        self.seconds["features"] += time.perf_counter() - start
        self.cached[split] = hit
        self.log(
            f"  {split}: {len(dataset)} videos x {self.K * self.V} clips, features {tuple(result.features.shape[2:])}"
            + (" (from cache)" if hit else "")
        )
        return result

    def reuse_cached(self, split: str, dataset, passes: int) -> FeatureSet | None:
        """These features made from a cached file of this encoder instead of its forward passes: the tokens
        of the same videos (an attentive probe's) pooled, or, for a prefix of a list (features.train_videos /
        val_videos), the whole list's features or tokens cut to the prefix. None when there is none. Equal to
        extracting them: `encode_batches` rounds the tokens to the storage dtype before pooling."""
        whole = self.whole.get(split)
        sources = [(dataset, "none")] if self.pooling != "none" else []
        if whole is not None:
            sources += [(whole, self.pooling)] + ([(whole, "none")] if self.pooling != "none" else [])
        for source, pooling in sources:
            key = self.feature_key(source, passes, pooling)
            found = read_cache(self.cache_dir / f"{split}-{key}.safetensors", key)
            if found is not None and pooling != self.pooling:
                found = self.pool_tokens(found)
            if found is None:
                continue
            if source is not dataset:
                found = cut_to_prefix(found, len(dataset), dataset.on_bad)
            what = "tokens" if pooling == "none" else "features"
            whose = "of the whole list " if source is not dataset else ""
            self.log(f"  {split}: from the cached {what} {whose}of this encoder")
            return found
        return None

    def pool_tokens(self, tokens: FeatureSet) -> FeatureSet | None:
        """Cached tokens pooled as this probe reads them (None if they are not plain clips of the protocol)."""
        d = self.data
        grid = self.encoder.grid(d.frames_per_clip, d.crop_size, d.crop_size)
        if tokens.features.shape[-2] != math.prod(grid):
            return None
        pooled = pool_features(tokens.features.float(), self.pooling, grid).to(tokens.features.dtype)
        return FeatureSet(pooled, tokens.indices)

    def run(self) -> dict:
        cfg = self.cfg
        self.log(f"task {self.task.name}: {self.num_classes} classes, probe {cfg.probe.kind}")
        val = self.features("val", self.val_ds, 1, cfg.features.cache)
        scored = set(val.indices[0].tolist())
        self.val_excluded = [e.path for i, e in enumerate(self.val_ds.entries) if i not in scored]
        if self.val_excluded:
            self.log(
                f"  val: {len(self.val_excluded)} unreadable file(s) excluded from the score, e.g. "
                f"{self.val_excluded[0]}; scoring the other {len(val)}"
            )
        cells, predictions = self.run_knn(val) if self.knn else self.run_grid(val)
        score = lambda c: (c["top1"], -c.get("val_loss", 0.0))  # noqa: E731 - ties go to the lower loss
        best = max(cells, key=score)
        labels = val.labels[0]
        counts = torch.bincount(labels, minlength=self.num_classes)
        C = self.num_classes
        confusion = torch.bincount(labels * C + predictions[cells.index(best)], minlength=C * C).view(C, C)
        d = self.data
        return {
            "name": self.task.name,
            "train": str(self.task.train),
            "val": str(self.task.val),
            "num_classes": self.num_classes,
            "num_train": len(self.train_ds),
            "num_val": len(val),
            "protocol": {
                "frames_per_clip": d.frames_per_clip,
                "frame_step": d.frame_step,
                "fps": d.fps,
                "num_clips": d.num_clips,
                "num_views": d.num_views,
                "crop_size": d.crop_size,
            },
            "chance": 1.0 / self.num_classes,
            "majority": float(counts.max() / counts.sum()),
            "top1": best["top1"],
            "top5": best["top5"],
            "best": {k: best[k] for k in (("k", "temperature") if "k" in best else ("lr", "weight_decay"))},
            "cells": cells,
            "classes": self.class_names(),
            "confusion": confusion.tolist(),
            "bad_files": {"train": self.train_ds.num_bad, "val": len(self.val_excluded)},
            "val_excluded": list(self.val_excluded),
            "cached": dict(self.cached),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }

    def class_names(self) -> list[str]:
        """The labels' names (the data's class list), or their numbers when it has none."""
        names = self.val_ds.classes or self.train_ds.classes
        return list(names) if len(names) == self.num_classes else [str(i) for i in range(self.num_classes)]

    def scores(self, logits: torch.Tensor, labels: torch.Tensor) -> dict:
        top5 = accuracy(logits, labels, 5).tolist() if self.num_classes > 5 else None
        return {"top1": accuracy(logits, labels, 1).tolist(), "top5": top5}

    def run_knn(self, val: FeatureSet) -> tuple[list[dict], torch.Tensor]:
        """The kNN cell and its validation predictions (1, B)."""
        p = self.cfg.probe
        train = self.features("train", self.train_ds, 1, self.cfg.features.cache)
        start = time.perf_counter()
        bank, labels = training_batch(train.features[0].float(), train.labels[0], self.K, self.V)
        knn = KNNClassifier(bank, labels, self.num_classes, p.knn_k, p.knn_temperature)
        scores = eval_logits(knn, val.features[0].float(), self.K, self.V)
        s = self.scores(scores, val.labels[0])
        self.seconds["eval"] += time.perf_counter() - start
        cells = [{"k": knn.k, "temperature": p.knn_temperature, "top1": s["top1"], "top5": s["top5"]}]
        return cells, scores.argmax(-1)[None]

    def run_grid(self, val: FeatureSet) -> tuple[list[dict], torch.Tensor]:
        """Every cell of the lr x wd grid and the cells' validation predictions (cells, B)."""
        from videojepa.data.loader import build_loader

        cfg, opt = self.cfg, self.cfg.optim
        dim = val.features.shape[-1]
        make = lambda: build_probe(cfg.probe.kind, dim, self.num_classes, cfg.probe.heads, cfg.probe.queries)  # noqa: E731
        steps = opt.epochs * math.ceil(len(self.train_ds) / opt.batch_size)
        device = next(self.encoder.parameters()).device
        grid = ProbeGrid(make, grid_cells(opt.lr, opt.weight_decay), cfg.run.seed, steps, opt.betas).to(device)
        if cfg.features.cache:
            train = prepare_features(
                grid, self.features("train", self.train_ds, max(1, cfg.features.augmentations), True)
            )

            def epoch_batches(epoch: int):
                g = torch.Generator().manual_seed(cfg.run.seed * 100_003 + epoch)
                for x, y in train.batches(opt.batch_size, epoch % train.passes, g):  # prepared above
                    yield training_batch(x.to(device, non_blocking=True), y.to(device), self.K, self.V)
        else:
            loader = build_loader(self.train_ds, opt.batch_size, self.data, cfg.run.seed, drop_last=False)

            def epoch_batches(epoch: int):
                loader.set_epoch(epoch)
                for x, y, _ in encode_batches(
                    self.encoder,
                    loader,
                    cfg.probe.layers,
                    cfg.probe.precision,
                    self.pooling,
                    f"{self.task.name} epoch {epoch + 1}",
                ):
                    x, y = training_batch(x.to(device), y.to(device), self.K, self.V)
                    yield grid.prepare(x), y

        self.log(f"  training {len(grid)} probe(s) for {opt.epochs} epochs ({steps} steps)")
        start = time.perf_counter()
        train_loss = fit(grid, opt.epochs, epoch_batches)
        self.seconds["train"] += time.perf_counter() - start

        start = time.perf_counter()
        val = prepare_features(grid, val)
        logits = torch.cat(
            [
                eval_logits(grid.logits, x.to(device), self.K, self.V).cpu()
                for x, _ in val.batches(cfg.features.batch_size)
            ],
            dim=1,
        )  # (cells, B, C)
        labels = val.labels[0]
        s = self.scores(logits, labels)
        val_loss = [F.cross_entropy(cell_logits, labels).item() for cell_logits in logits]
        self.seconds["eval"] += time.perf_counter() - start
        cells = [
            {
                **cell,
                "top1": s["top1"][i],
                "top5": None if s["top5"] is None else s["top5"][i],
                "val_loss": val_loss[i],
                "train_loss": float(train_loss[i]),
            }
            for i, cell in enumerate(grid.cells)
        ]
        return cells, logits.argmax(-1)


def resolve_probe_precision(cfg: ProbeConfig) -> None:
    """`probe.precision: auto` replaced, in place, by what it is on `run.device` here (bf16 on CUDA, the measured
    choice on a CPU), so that config.yaml, results.json and the feature cache keys record the precision used."""
    cfg.probe.precision = resolve_precision(cfg.probe.precision, resolve_device(cfg.run.device, "run.device"))


def run_probe(cfg: ProbeConfig, log: Callable[[str], None] | None = print, source: FeatureSource | None = None) -> dict:
    """Evaluate the configured encoder on every task; writes results into run.dir and returns them.
    `source` reads and encodes the clips (default: a fresh `FeatureSource`; pass one made with
    `keep_clips=True` to several calls to decode their videos once)."""
    from videojepa.config.loader import save_config, to_dict

    log = log or (lambda _: None)
    start = time.perf_counter()
    run_dir = Path(cfg.run.dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolve_probe_precision(cfg)
    save_config(cfg, run_dir / "config.yaml")
    encoder, info, identity = probe_encoder(cfg)
    source = source or FeatureSource()
    given = cfg.given_keys()
    tasks = []
    for task, data in cfg.task_list():
        data, taken = encoder_protocol(data, encoder.card, lambda key: f"data.{key}" in given or key in task.data)
        if taken:
            log(f"task {task.name}: from the encoder card: " + ", ".join(f"data.{k}={v}" for k, v in taken.items()))
        tasks.append(TaskRunner(cfg, encoder, identity, task, data, log, source))
    task_results = [t.run() for t in tasks]
    p = cfg.probe
    probe = {
        "kind": p.kind,
        "heads": p.heads,
        "queries": p.queries,
        "layers": list(p.layers),
        "feature_dim": encoder.embed_dim * len(p.layers),
        "precision": p.precision,
    }
    if p.kind.endswith("_frames"):
        probe.update(frame_grid=p.frame_grid, input=probe_input(p.kind, p.frame_grid))
    if p.kind in KNN_KINDS:
        probe.update(knn_k=p.knn_k, knn_temperature=p.knn_temperature)
    results = {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checkpoint": p.checkpoint,
        "encoder": info,
        "probe": probe,
        "features": {
            "cache": cfg.features.cache,
            "augmentations": cfg.features.augmentations,
            "dtype": cfg.features.dtype,
        },
        "tasks": task_results,
        "seconds": round(time.perf_counter() - start, 3),
        "config": to_dict(cfg),
    }
    if p.kind not in KNN_KINDS:
        o = cfg.optim
        results["optim"] = {
            "epochs": o.epochs,
            "batch_size": o.batch_size,
            "lr": list(o.lr),
            "weight_decay": list(o.weight_decay),
            "betas": list(o.betas),
        }
    write_results(run_dir, results)
    return results
