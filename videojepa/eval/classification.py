"""Classification: the evaluation protocol of `videojepa probe` for labelled tasks (`tasks[].evaluation:
classification`, the default).

Per task: build the train and val datasets with the task's protocol (the test views as probe.test_views says,
`protocol.with_test_views`) and refuse, before any work, features that would be held beyond
features.max_cache_gb. Then either fit a kind that does not train (kNN) or train the whole lr x wd grid of
probes in one pass (`grid.ProbeGrid`), either on cached features (the validation features extracted once,
pooled as the probe kind reads them, from a cached token file of the same encoder and data when there is one, so
the attentive probe and the cheap ones share one encoder pass; the training features once, optionally several
augmented copies) or streamed (features.cache=false): every epoch's training clips drawn afresh (random clips,
RandAugment / AutoAugment, erasing: the `augment` section) and encoded batch by batch, once for every cell, and
the validation videos encoded and scored batch by batch after training. Both paths visit the training videos in
the same order. Every cell is scored on validation with the multi-view protocol (`protocol`: softmax or logits
averaged over views); the best cell's top-1 is the task's score (`ClassificationResult`). With
features.train_fraction the grid runs on each low-shot split (`lowshot`) and the scores are means over them.
The best cell's attentive probe is saved as RUN/probes/TASK.safetensors with its card (`probe_file`: the
protocol, test views and averaging included): with its encoder it is a classifier (`videojepa evaluate`,
`videojepa.load_classifier`); with low-shot splits it is the last split's.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field

from videojepa.data.augment import AugmentedDataset
from videojepa.data.build import build_dataset
from videojepa.data.config import DataConfig
from videojepa.data.datasets import VideoDataset
from videojepa.data.loader import build_loader
from videojepa.errors import UserError
from videojepa.eval.config import TaskConfig
from videojepa.eval.encoders import accuracy, check_protocol, task_labels
from videojepa.eval.features import (
    DTYPES,
    FeatureSet,
    cache_key,
    dataset_contents,
    encode_batches,
    load_or_extract,
    parse_pooling,
    pool_features,
    read_cache,
)
from videojepa.eval.grid import ProbeGrid, fit, grid_cells
from videojepa.eval.lowshot import balanced_subset, mean_std, split_seed
from videojepa.eval.probe_file import ClassifierProtocol, ProbeCard, save_probe
from videojepa.eval.probes import AttentiveProbe, get_probe_kind, probe_heads
from videojepa.eval.protocol import eval_logits, training_batch, with_test_views
from videojepa.eval.tasks import Evaluation, TaskContext, TaskResult, register_evaluation

SCORES = ("top1", "top5", "val_loss", "train_loss")  # what a cell measures (the rest of it is its setting)


class ClassificationResult(TaskResult):
    """A classification task's entry in results.json (`videojepa.eval.report` documents every key)."""

    num_classes: int
    chance: float  # 1 / num_classes
    majority: float  # share of the most frequent class in val
    top1: float = Field(ge=0.0, le=1.0)  # the best cell's validation top-1 (a fraction)
    top5: float | None  # None when num_classes <= 5
    best: dict  # the best cell's setting: {lr, weight_decay}, or a fitted kind's (kNN: {k, temperature})
    cells: list[dict] = Field(min_length=1)  # every probe of the grid, lr-major: its setting and scores
    classes: list[str]  # label names in label order (numbers when the data has none)
    confusion: list[list[int]]  # the best cell, validation videos: [true label][predicted label]
    bad_files: dict[str, int]  # unreadable files: train ones replaced, val ones excluded from the score
    val_excluded: list[str]  # the excluded validation files
    cached: dict[str, bool]  # features read from an existing cache file
    probe_file: str | None = None  # the best attentive probe with its card (`videojepa evaluate`); None for other
    # kinds, a random-init encoder, and files written before probes were saved
    top1_std: float | None = None  # low-shot: the best setting's top-1 standard deviation over the splits
    low_shot: dict | None = None  # low-shot: fraction, splits, seeds, num_train, per-split top1, top1_mean, top1_std


def first_videos(dataset, count: int):
    """A dataset of the first `count` files of `dataset`'s list, with the same settings."""
    return some_videos(dataset, range(count))


def some_videos(dataset, rows):
    """A dataset of the files `rows` of `dataset`'s list, in that order, with the same settings."""
    return VideoDataset(
        [dataset.entries[i] for i in rows],
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


@register_evaluation
class Classification(Evaluation):
    """A classification task scored by the configured probe kind; see the module docstring."""

    name = "classification"
    result = ClassificationResult

    def __init__(self, context: TaskContext, task: TaskConfig, data: DataConfig):
        cfg = context.cfg
        data = with_test_views(data, cfg.probe.test_views)
        super().__init__(context, task, data)
        encoder = self.encoder
        self.identity, self.source = context.identity, context.source
        check_protocol(encoder, data, task.name)
        self.kind, feat = get_probe_kind(cfg.probe.kind), cfg.features
        # the probe section the kind is built from: heads resolved (the encoder card's by default)
        self.settings = cfg.probe.model_copy(update={"heads": probe_heads(cfg.probe, encoder)})
        self.pooling = self.kind.input(cfg.probe.frame_grid)
        self.knn = not self.kind.trains
        # streamed: every training batch runs through the encoder (fresh views each epoch), validation too
        self.stream = self.kind.trains and not feat.cache
        fresh = self.kind.trains and (self.stream or feat.augmentations > 0)  # training views drawn, not cached once
        self.augment = fresh and cfg.augment.random_clips
        self.clip_augment = cfg.augment.clip_augment(data) if fresh else None
        # how the views' scores are combined: kNN's are vote shares (averaged as they are)
        self.average = "votes" if self.knn else "softmax" if cfg.probe.test_views == "official" else "logits"
        train_data = data.model_copy(update={"num_views": cfg.augment.views or data.num_views})
        where = f"tasks.{[t.name for t in cfg.tasks].index(task.name)}" if cfg.tasks else "data"
        self.train_ds = build_dataset(task.train, train_data, train=self.augment, key=f"{where}.train")
        # Validation never substitutes a bad file by another one (that would count a video twice): bad files
        # are excluded from the score and reported.
        self.val_ds = build_dataset(task.val, data, train=False, key=f"{where}.val", on_bad="exclude")
        self.val_excluded: list[str] = []
        named = f"task {task.name}"
        self.num_classes, self.classes = task_labels(
            self.train_ds, self.val_ds, task.num_classes, named, f"{named}: num_classes", "probing"
        )
        # features.train_videos / val_videos: probe a prefix of each list; the whole list stays known so that
        # its cached features can be cut to the prefix
        self.whole = {}
        for split, limit in (("train", feat.train_videos), ("val", feat.val_videos)):
            dataset = self.train_ds if split == "train" else self.val_ds
            if limit is not None and limit < len(dataset):
                self.whole[split] = dataset
                setattr(self, f"{split}_ds", first_videos(dataset, limit))
        self.K, self.V, self.V_train = data.num_clips, data.num_views, train_data.num_views
        self.cache_dir = Path(feat.dir or Path(cfg.run.dir) / "features")
        self.seconds = {"features": 0.0, "train": 0.0, "eval": 0.0}
        self.cached = {"train": False, "val": False}
        self.train_rows: list[int] | None = None  # low-shot: the current split's videos (rows of the training list)
        self.prepared: dict[str, FeatureSet] = {}  # features through the grid's `prepare`, once for all splits
        self.num_scored = 0  # validation videos scored
        self.check_cache_size()

    def feature_width(self) -> int:
        """Channels of one clip's features as the probe reads them (per token for unpooled features)."""
        d, width = self.data, self.encoder.embed_dim * len(self.cfg.probe.layers)
        kind, cells = parse_pooling(self.pooling)
        if kind == "frames":
            return self.encoder.grid(d.frames_per_clip, d.crop_size, d.crop_size)[0] * cells * cells * width
        return width

    def check_cache_size(self) -> None:
        """Refuse, before any work, features that would be held (cached on disk and read into memory) beyond
        features.max_cache_gb, naming the estimate and the streaming alternative."""
        if self.stream:  # nothing held: every batch is encoded, used and dropped
            return
        d, feat = self.data, self.cfg.features
        tokens = 1
        if self.pooling == "none":
            tokens = math.prod(self.encoder.grid(d.frames_per_clip, d.crop_size, d.crop_size))
        per_clip = tokens * self.feature_width() * DTYPES[feat.dtype].itemsize
        passes = max(1, feat.augmentations) if self.kind.trains else 1
        parts = {
            "train": passes * len(self.train_ds) * self.K * self.V_train,
            "val": len(self.val_ds) * self.K * self.V,
        }
        total = per_clip * sum(parts.values())
        if total <= feat.max_cache_gb * 1e9:
            return
        what = f"{tokens} tokens x {self.feature_width()} channels" if tokens > 1 else f"{self.feature_width()} values"
        instead = (
            "stream the clips through the encoder instead: features.cache=false (fresh augmented views every "
            "epoch, validation streamed, nothing stored)"
            if self.kind.trains
            else "pool the features more (probe.kind=knn) or use fewer videos"
        )
        raise UserError(
            f"features.cache: task {self.task.name}'s features would take {_size(total)} ({parts['train']} training "
            f"+ {parts['val']} validation clips x {what} x {feat.dtype}), more than features.max_cache_gb="
            f"{feat.max_cache_gb:g}; {instead}, or raise features.max_cache_gb"
        )

    def training_clips(self, dataset):
        """The training dataset as the probes read it: its items RandAugmented / erased when asked."""
        return dataset if self.clip_augment is None else AugmentedDataset(dataset, self.clip_augment)

    def feature_key(self, split: str, dataset, passes: int, pooling: str) -> str:
        cfg = self.cfg
        # RandAugment / erasing of the cached training copies (absent otherwise: earlier keys stay valid)
        augmented = {"augment": asdict(self.clip_augment)} if split == "train" and self.clip_augment else {}
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
            **augmented,
        )

    def features(self, split: str, dataset, passes: int, to_disk: bool) -> FeatureSet:
        cfg = self.cfg
        key = self.feature_key(split, dataset, passes, self.pooling)
        path = self.cache_dir / f"{split}-{key}.safetensors" if to_disk else None
        start = time.perf_counter()

        def extract() -> FeatureSet:
            reused = self.reuse_cached(split, dataset, passes) if to_disk else None
            if reused is not None:
                return reused
            return self.source.extract(
                self.encoder,
                self.training_clips(dataset) if split == "train" else dataset,
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
            key = self.feature_key(split, source, passes, pooling)
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

    def run(self) -> ClassificationResult:
        cfg = self.cfg
        self.log(f"task {self.task.name}: {self.num_classes} classes, probe {cfg.probe.kind}")
        val = None
        if not self.stream:  # streamed validation is scored batch by batch after training
            val = self.features("val", self.val_ds, 1, cfg.features.cache)
            self.note_excluded(val.indices[0].tolist())
        low_shot = None
        if cfg.features.train_fraction is None:
            cells, predictions, labels = self.run_knn(val) if self.knn else self.run_grid(val)
        else:
            cells, predictions, labels, low_shot = self.run_splits(val)
        best = max(cells, key=_score)
        counts = torch.bincount(labels, minlength=self.num_classes)
        C = self.num_classes
        confusion = torch.bincount(labels * C + predictions[cells.index(best)], minlength=C * C).view(C, C)
        d = self.data
        setting = ("lr", "weight_decay") if self.kind.trains else [k for k in best if k not in SCORES]
        saved = self.save_best_probe(cells.index(best))
        return ClassificationResult(
            name=self.task.name,
            evaluation=self.name,
            train=str(self.task.train),
            val=str(self.task.val),
            num_classes=self.num_classes,
            num_train=len(self.train_ds) if self.train_rows is None else len(self.train_rows),
            num_val=self.num_scored,
            protocol={
                "frames_per_clip": d.frames_per_clip,
                "frame_step": d.frame_step,
                "fps": d.fps,
                "num_clips": d.num_clips,
                "num_views": d.num_views,
                "crop_size": d.crop_size,
                "test_views": cfg.probe.test_views,
                "eval_resize_ratio": d.eval_resize_ratio,
                "average": self.average,
                "train_views": self.V_train,
                "training": self.training_description(),
            },
            chance=1.0 / self.num_classes,
            majority=float(counts.max() / counts.sum()),
            top1=best["top1"],
            top1_std=None if low_shot is None else low_shot["top1_std"],
            low_shot=low_shot,
            top5=best["top5"],
            best={k: best[k] for k in setting},
            cells=cells,
            classes=self.classes,
            confusion=confusion.tolist(),
            bad_files={"train": self.train_ds.num_bad, "val": len(self.val_excluded)},
            val_excluded=list(self.val_excluded),
            cached=dict(self.cached),
            seconds={k: round(v, 3) for k, v in self.seconds.items()},
            probe_file=saved,
        )

    def run_splits(self, val: FeatureSet | None) -> tuple[list[dict], torch.Tensor, torch.Tensor, dict]:
        """Low-shot (`lowshot`): the grid (or kNN) on each class-balanced split of the training list; every cell's
        scores averaged over the splits (each cell also lists its per-split top-1), the best setting's top-1 mean
        and standard deviation, and the predictions and labels of all splits one after the other (so that the
        confusion matrix sums over them)."""
        feat, n = self.cfg.features, len(self.train_ds)
        labels_of = [e.label for e in self.train_ds.entries]
        runs = []
        for k in range(feat.splits):
            seed = split_seed(self.cfg.run.seed, k)
            self.train_rows = balanced_subset(labels_of, feat.train_fraction, seed)
            self.log(f"  split {k + 1}/{feat.splits}: {len(self.train_rows)} of {n} training videos, class-balanced")
            runs.append((seed, *(self.run_knn(val) if self.knn else self.run_grid(val))))
        cells = []
        for i, cell in enumerate(runs[0][1]):
            per_split = [run[1][i] for run in runs]
            merged = {key: value for key, value in cell.items() if key not in SCORES}
            for key in SCORES:
                values = [c.get(key) for c in per_split]
                if values and all(v is not None for v in values):
                    merged[key] = mean_std(values)[0]
                elif key in cell:
                    merged[key] = None
            merged["top1_splits"] = [c["top1"] for c in per_split]
            cells.append(merged)
        best = max(cells, key=_score)
        mean, std = mean_std(best["top1_splits"])
        low_shot = {
            "fraction": feat.train_fraction,
            "splits": feat.splits,
            "seeds": [run[0] for run in runs],
            "num_train": len(self.train_rows),
            "top1": best["top1_splits"],
            "top1_mean": mean,
            "top1_std": std,
        }
        predictions = torch.cat([run[2] for run in runs], dim=1)
        labels = torch.cat([run[3] for run in runs])
        return cells, predictions, labels, low_shot

    def note_excluded(self, scored: list[int]) -> None:
        """Record (and log) the validation files that could not be read: they are left out of the score."""
        scored = set(scored)
        self.num_scored = len(scored)
        self.val_excluded = [e.path for i, e in enumerate(self.val_ds.entries) if i not in scored]
        if self.val_excluded:
            self.log(
                f"  val: {len(self.val_excluded)} unreadable file(s) excluded from the score, e.g. "
                f"{self.val_excluded[0]}; scoring the other {len(scored)}"
            )

    def training_description(self) -> str:
        """How the probes saw the training videos, for results.json and results.md."""
        feat, aug = self.cfg.features, self.cfg.augment
        if not self.kind.trains:
            return "features of the evaluation clips"
        clips = "random clips (crop, flip)" if self.augment else "evaluation clips"
        if self.clip_augment is not None and aug.auto_augment:
            clips += " + AutoAugment (ImageNet policy)"
        if self.clip_augment is not None and aug.randaugment_n:
            clips += f" + RandAugment n{aug.randaugment_n} m{aug.randaugment_m:g}"
        if self.clip_augment is not None and aug.erase_prob:
            clips += f" + erasing p{aug.erase_prob:g}"
        if self.stream:
            fresh = self.augment or self.clip_augment is not None
            return f"streamed: {clips}, " + ("fresh every epoch" if fresh else "encoded every epoch")
        if feat.augmentations:
            return f"cached: {feat.augmentations} copies of {clips}"
        return "cached: evaluation clips"

    def save_best_probe(self, cell: int) -> str | None:
        """The best cell's attentive probe as RUN/probes/TASK.safetensors with its card (the encoder it reads,
        the protocol, the class names): a classifier for `videojepa evaluate` / `videojepa.load_classifier`.
        None for other kinds and for a random-init encoder (no file to name)."""
        encoder_file = self.identity.get("file")
        if self.knn or self.kind.cls is not AttentiveProbe or encoder_file is None:
            return None
        d, probe = self.data, self.grid.probes[cell]
        protocol = ClassifierProtocol(
            frames=d.frames_per_clip,
            frame_step=None if d.fps else d.frame_step,
            fps=d.fps,
            crop=d.crop_size,
            mean=tuple(d.mean),
            std=tuple(d.std),
            resize_ratio=d.eval_resize_ratio,
            num_clips=d.num_clips,
            num_views=d.num_views,
            average=self.average,  # `eval_logits`: the views' softmax or logits averaged
        )
        card = ProbeCard(
            arch=probe.arch,
            layers=list(self.cfg.probe.layers),
            protocol=protocol,
            classes=self.classes,
            source={"format": "videojepa probe", "task": self.task.name, **self.grid.cells[cell]},
            encoder=encoder_file,
        )
        path = Path(self.cfg.run.dir) / "probes" / f"{self.task.name}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_probe(probe, path, card)
        return str(path)

    def scores(self, logits: torch.Tensor, labels: torch.Tensor) -> dict:
        top5 = accuracy(logits, labels, 5).tolist() if self.num_classes > 5 else None
        return {"top1": accuracy(logits, labels, 1).tolist(), "top5": top5}

    def run_knn(self, val: FeatureSet) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
        """A kind fit from the training features in one pass (kNN): its cell, validation predictions (1, B) and
        labels (B,)."""
        if "knn_train" not in self.prepared:  # once for all low-shot splits
            self.prepared["knn_train"] = self.features("train", self.train_ds, 1, self.cfg.features.cache)
        train = select_rows(self.prepared["knn_train"], self.train_rows)
        start = time.perf_counter()
        bank, labels = training_batch(train.features[0].float(), train.labels[0], self.K, self.V_train)
        scorer = self.kind.fit(bank, labels, self.num_classes, self.settings)
        # the views' vote shares averaged (they are probabilities already)
        scores = eval_logits(scorer, val.features[0].float(), self.K, self.V, "logits")
        s = self.scores(scores, val.labels[0])
        self.seconds["eval"] += time.perf_counter() - start
        cells = [{**scorer.setting(), "top1": s["top1"], "top5": s["top5"]}]
        return cells, scores.argmax(-1)[None], val.labels[0]

    def run_grid(self, val: FeatureSet | None) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
        """Every cell of the lr x wd grid, the cells' validation predictions (cells, B) and the labels (B,).
        `val`: the validation features, or None to stream them after training."""
        cfg, opt = self.cfg, self.cfg.optim
        dim = val.features.shape[-1] if val is not None else self.feature_width()
        make = lambda: self.kind.build(dim, self.num_classes, self.settings)  # noqa: E731
        num_train = len(self.train_ds) if self.train_rows is None else len(self.train_rows)
        steps = opt.epochs * math.ceil(num_train / opt.batch_size)
        device = next(self.encoder.parameters()).device
        grid = ProbeGrid(
            make,
            grid_cells(opt.lr, opt.weight_decay),
            cfg.run.seed,
            steps,
            opt.betas,
            opt.grad_clip,
            opt.final_weight_decay,
            opt.decay_norms_and_biases,
        ).to(device)
        self.grid = grid  # its best cell's probe is saved (`save_best_probe`)
        epoch_batches = self.streamed_batches(grid) if self.stream else self.cached_batches(grid)
        self.log(f"  training {len(grid)} probe(s) for {opt.epochs} epochs ({steps} steps)")
        start = time.perf_counter()
        train_loss = fit(grid, opt.epochs, epoch_batches)
        self.seconds["train"] += time.perf_counter() - start

        start = time.perf_counter()
        logits, labels = self.validation_logits(grid, val)  # (cells, B, C), (B,)
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
        return cells, logits.argmax(-1), labels

    # Both training paths visit the videos in the same order: epoch e shuffles them with a generator seeded
    # run.seed * 100_003 + e (the streaming loader's sampler seeds `seed + epoch`, so it is given that seed).
    def cached_batches(self, grid: ProbeGrid):
        """Training batches read from cached features (epoch e: pass e mod passes), prepared once."""
        cfg, opt, device = self.cfg, self.cfg.optim, next(grid.parameters()).device
        if "train" not in self.prepared:  # prepared once, for every low-shot split
            passes = max(1, cfg.features.augmentations)
            self.prepared["train"] = prepare_features(grid, self.features("train", self.train_ds, passes, True))
        train = select_rows(self.prepared["train"], self.train_rows)

        def epoch_batches(epoch: int):
            g = torch.Generator().manual_seed(cfg.run.seed * 100_003 + epoch)
            for x, y in train.batches(opt.batch_size, epoch % train.passes, g):  # prepared above
                yield training_batch(x.to(device, non_blocking=True), y.to(device), self.K, self.V_train)

        return epoch_batches

    def streamed_batches(self, grid: ProbeGrid):
        """Training batches encoded as they are read: the loader's workers decode and augment every epoch's
        clips afresh (their draws are a function of (video, seed, epoch)), and the encoder runs once per clip
        for every probe of the grid."""
        cfg, opt, device = self.cfg, self.cfg.optim, next(grid.parameters()).device
        subset = self.train_ds if self.train_rows is None else some_videos(self.train_ds, self.train_rows)
        dataset = self.training_clips(subset)
        loader = build_loader(dataset, opt.batch_size, self.data, cfg.run.seed * 100_003, drop_last=False, shuffle=True)

        def epoch_batches(epoch: int):
            loader.set_epoch(epoch)
            for x, y, _ in encode_batches(
                self.encoder,
                loader,
                cfg.probe.layers,
                cfg.probe.precision,
                self.pooling,
                f"{self.task.name} epoch {epoch + 1}",
                total=len(loader),
                chunk=cfg.features.batch_size,  # videos per encoder forward: a batch may hold thousands of clips
            ):
                x, y = training_batch(x.to(device), y.to(device), self.K, self.V_train)
                yield grid.prepare(x), y

        return epoch_batches

    def validation_logits(self, grid: ProbeGrid, val: FeatureSet | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every cell's scores of every validation video (cells, B, C), its views combined as the test protocol
        says (`eval_logits`), and the labels (B,): from the validation features, or streamed through the encoder
        batch by batch (nothing held but the scores)."""
        cfg, device = self.cfg, next(grid.parameters()).device
        bs = cfg.features.batch_size
        if val is not None:
            if "val" not in self.prepared:  # prepared once, for every low-shot split
                self.prepared["val"] = prepare_features(grid, val)
            val = self.prepared["val"]
            batches = ((x.to(device), y) for x, y in val.batches(bs))
            logits = [eval_logits(grid.logits, x, self.K, self.V, self.average).cpu() for x, _ in batches]
            return torch.cat(logits, dim=1), val.labels[0]
        loader = build_loader(self.val_ds, bs, self.data, cfg.run.seed, drop_last=False, shuffle=False)
        logits, labels, scored = [], [], []
        for x, y, index in encode_batches(
            self.encoder,
            loader,
            cfg.probe.layers,
            cfg.probe.precision,
            self.pooling,
            f"{self.task.name} val",
            total=len(loader),
        ):
            keep = index >= 0  # an unreadable file comes back with index -1: excluded, reported
            if keep.any():
                x = grid.prepare(x[keep].to(device))
                logits.append(eval_logits(grid.logits, x, self.K, self.V, self.average).cpu())
                labels.append(y[keep].long())
                scored += index[keep].tolist()
        if not logits:
            raise UserError(f"none of the {len(self.val_ds)} files of {self.task.val} could be read")
        self.note_excluded(scored)
        return torch.cat(logits, dim=1), torch.cat(labels)

    @classmethod
    def markdown(cls, results: dict, tasks: list[dict]) -> list[str]:
        """Top-1 per task with the probe's settings and the protocol, then each task's excluded files, per-class
        top-1 and grid."""
        probe = results["probe"]
        lines = [
            "| task | top-1 | chance | probe | best setting | clips x views, averaged | frames x step | crop | "
            "train / val |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for t in tasks:
            p = t["protocol"]
            step = f"{p['fps']:g} fps" if p.get("fps") else str(p["frame_step"])
            views = f"{p['num_clips']} x {p['num_views']}" + (f", {p['average']}" if p.get("average") else "")
            top1 = _pct(t["top1"]) + (f" ± {_pct(t['top1_std'])}" if t.get("top1_std") is not None else "")
            lines.append(
                f"| {t['name']} | {top1} | {_pct(t['chance'])} | {probe['kind']} | {_setting(t['best'])} "
                f"| {views} | {p['frames_per_clip']} x {step} | {p['crop_size']} "
                f"| {t['num_train']} / {t['num_val']} |"
            )
        for t in tasks:
            shot = t.get("low_shot")
            if shot:
                per_split = ", ".join(_pct(x) for x in shot["top1"])
                std = "" if shot["top1_std"] is None else f" ± {_pct(shot['top1_std'])}"
                lines += [
                    "",
                    f"{t['name']}: low-shot, {shot['fraction']:g} of each class's training videos (rounded up), "
                    f"{shot['num_train']} videos, {shot['splits']} random split(s): top-1 {per_split} "
                    f"(mean {_pct(shot['top1_mean'])}{std}, the best setting's)",
                ]
        for t in tasks:
            p = t["protocol"]
            if "test_views" in p:  # files written before the test protocol was recorded have none
                lines += ["", f"{t['name']}: {protocol_line(p)}"]
        for t in tasks:
            if t["val_excluded"]:
                lines += [
                    "",
                    f"{t['name']}: {len(t['val_excluded'])} unreadable validation file(s) excluded from the "
                    f"score: " + ", ".join(t["val_excluded"][:5]) + (", ..." if len(t["val_excluded"]) > 5 else ""),
                ]
        for t in tasks:
            if len(t["classes"]) <= 20:
                lines += [
                    "",
                    f"Per-class top-1 for {t['name']} (best cell, validation; %): "
                    + ", ".join(
                        f"{name} {_pct(row[i] / max(sum(row), 1))}"
                        for i, (name, row) in enumerate(zip(t["classes"], t["confusion"]))
                    ),
                ]
        for t in tasks:
            if len(t["cells"]) < 2:
                continue
            lines += ["", f"Grid for {t['name']} (validation top-1, %):", ""]
            lrs = sorted({c["lr"] for c in t["cells"]}, reverse=True)
            wds = sorted({c["weight_decay"] for c in t["cells"]})
            top1 = {(c["lr"], c["weight_decay"]): c["top1"] for c in t["cells"]}
            lines += ["| lr \\ wd | " + " | ".join(f"{wd:g}" for wd in wds) + " |", "|---" * (len(wds) + 1) + "|"]
            lines += [f"| {lr:g} | " + " | ".join(_pct(top1.get((lr, wd))) for wd in wds) + " |" for lr in lrs]
        return lines


def protocol_line(p: dict) -> str:
    """The training and test protocol of a task, in words (results.md)."""
    short = f"short side = crop x {p['eval_resize_ratio']:.4g}"
    if p["num_views"] > 1:
        test = f"{p['num_views']} views spanning the long side ({short})"
    else:
        test = f"one centre crop ({short})"
    segments = f"{p['num_clips']} segments, tokens concatenated, " if p["num_clips"] > 1 else ""
    return (
        f"training on {p.get('training', '?')}, {p.get('train_views', 1)} view(s) per clip; test ({p['test_views']}): "
        f"{segments}{test}, {p['average']} averaged over views"
    )


def _score(cell: dict) -> tuple:
    """How cells are ranked: top-1, ties to the lower validation loss."""
    return cell["top1"], -(cell.get("val_loss") or 0.0)


def select_rows(features: FeatureSet, rows: list[int] | None) -> FeatureSet:
    """The rows of a feature set that belong to these videos of its list (all when `rows` is None)."""
    if rows is None:
        return features
    labels = None if features.labels is None else features.labels[:, rows]
    return FeatureSet(features.features[:, rows], features.indices[:, rows], labels)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _setting(best: dict) -> str:
    if "lr" in best:
        return f"lr {best['lr']:g}, wd {best['weight_decay']:g}"
    if "k" in best:
        return f"k {best['k']}, T {best['temperature']:g}"
    return ", ".join(f"{key} {value}" for key, value in best.items())


def _size(nbytes: float) -> str:
    """Bytes in the largest unit that keeps a number >= 1 (decimal units: GB = 1e9 bytes)."""
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes / 1e3:.1f} kB"
