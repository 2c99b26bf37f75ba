"""What `videojepa finetune CONFIG` runs: load the encoder, train it with a head end to end, test it.

    from videojepa.config import load_config
    from videojepa.finetune import FinetuneConfig, run_finetune
    results = run_finetune(load_config("demo/finetune", ["finetune.checkpoint=runs/vjepa"], schema=FinetuneConfig))

1. The encoder: `finetune.checkpoint` (run directory, encoder file or converted folder) or a random-init
   `model.name`; data keys left at their defaults come from its card, as in `videojepa probe`.
2. Training: the pretraining `Trainer` on a `Classification` task (exact kill-and-resume, bf16/fp16,
   accumulation, activation checkpointing, DDP / FSDP2, metrics.jsonl, progress bar). `FinetuneTrainer`
   adds one thing to the trainer's checkpoint: the classifier is scored on data.val (one centre view) and
   written to RUN/last, and to RUN/best when its top-1 is the best so far. The scoring runs under a forked
   RNG after the checkpoint is written, so it changes nothing a resumed run would see.
3. Test: best and last are scored with one view and with eval.num_segments x eval.num_crops views (logits
   averaged); RUN/results.json and RUN/results.md hold top-1 / top-5 per view protocol and, for up to
   20 classes, the confusion matrices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from videojepa.config.loader import to_dict
from videojepa.data.build import build_dataset
from videojepa.encoder_io import ClipProtocol, EncoderCard
from videojepa.errors import ConfigError
from videojepa.eval.encoders import EncoderInfo, check_protocol, encoder_protocol, load_task_encoder, task_labels
from videojepa.finetune.config import FinetuneConfig
from videojepa.finetune.evaluate import evaluate
from videojepa.finetune.export import HEAD_FILE, load_classifier, save_classifier
from videojepa.finetune.head import ClassifierHead
from videojepa.finetune.model import Classification
from videojepa.finetune.report import FinetuneResults, write_results
from videojepa.train.sources import check_data_sources
from videojepa.train.trainer import Trainer

log = logging.getLogger("videojepa.train.finetune")  # a child of the trainer's logger: train.log gets it

CONFUSION_MAX_CLASSES = 20


def finetune_encoder(cfg: FinetuneConfig) -> tuple[torch.nn.Module, EncoderInfo]:
    """The encoder to fine-tune (fp32, on CPU) and a description of it for the results."""
    encoder, info, _ = load_task_encoder(cfg.finetune.checkpoint, cfg.model, cfg.run.seed)
    return encoder, info


def resolve_protocol(cfg: FinetuneConfig, encoder) -> dict:
    """Take the clip keys the user left at their defaults from the encoder card (in place); returns them."""
    given = cfg.given_keys()
    data, taken = encoder_protocol(cfg.data, encoder.card, lambda key: f"data.{key}" in given)
    cfg.data = data
    check_protocol(encoder, cfg.data, "finetune")
    return taken


def label_count(cfg: FinetuneConfig, train_ds, val_ds) -> tuple[int, list[str]]:
    """Number of classes (finetune.num_classes or read from the data) and their names."""
    return task_labels(
        train_ds, val_ds, cfg.finetune.num_classes, "data.train / data.val", "finetune.num_classes", "fine-tuning"
    )


def view_dataset(cfg: FinetuneConfig, segments: int, crops: int):
    data = cfg.data.model_copy(update={"num_clips": segments, "num_views": crops})
    return build_dataset(cfg.data.val, data, train=False, key="data.val", on_bad="exclude")


class FinetuneTrainer(Trainer):
    """The trainer, with the classifier scored and exported at every checkpoint (see the module docstring)."""

    def __init__(self, cfg: FinetuneConfig, model: Classification, **kwargs):
        super().__init__(cfg, method=model, **kwargs)
        self.val_views = view_dataset(cfg, 1, 1)

    def save(self) -> None:
        super().save()
        self.checkpoint_classifier()

    def checkpoint_classifier(self) -> None:
        model = self.method
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            model.eval()
            try:
                scores = evaluate(
                    model.logits,
                    self.val_views,
                    self.cfg.eval.batch_size,
                    model.num_classes,
                    self.device,
                    self.autocast_dtype,
                )
            finally:
                model.train()
            encoder = self.checkpoints.exported_encoder()
            head = self.checkpoints.gathered(model.head, lambda head: ClassifierHead(**head.arch))
        if not self.dist.is_main:
            return
        if self.metrics:
            self.metrics.write("val", {"step": self.step, "val_top1": scores["top1"], "val_top5": scores["top5"]})
        best = read_info(self.run_dir / "best")
        # the test protocol, for `videojepa evaluate` / `videojepa.load_classifier` (each clip scored alone)
        test = {"num_clips": self.cfg.eval.num_segments, "num_views": self.cfg.eval.num_crops, "joint_clips": False}
        info = {"step": self.step, "val_top1": scores["top1"], "protocol": test}
        clip = ClipProtocol.from_data(self.cfg.data)
        card = EncoderCard.describe(encoder, clip=clip, method=model.name, step=self.step)
        save_classifier(self.run_dir / "last", encoder, head, card, model.classes, info)
        if best is None or scores["top1"] > best["val_top1"]:
            save_classifier(self.run_dir / "best", encoder, head, card, model.classes, info)
        log.info(
            "step %d: val top-1 %.1f%% (one view)%s",
            self.step,
            100 * scores["top1"],
            "" if best is None or scores["top1"] > best["val_top1"] else f", best {100 * best['val_top1']:.1f}%",
        )


def read_info(folder: Path) -> dict | None:
    import json

    from safetensors import safe_open

    path = folder / HEAD_FILE
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {}).get("info", "null"))


def test_classifiers(cfg: FinetuneConfig, run_dir: Path, num_classes: int, log_line: Callable[[str], None]) -> dict:
    """Score RUN/best and RUN/last with one view and with the configured multi-view test, in the training
    precision (bf16 / fp16 under autocast). When best is last (the same step), it is scored once."""
    protocols = [(1, 1)]
    if (cfg.eval.num_segments, cfg.eval.num_crops) != (1, 1):
        protocols.append((cfg.eval.num_segments, cfg.eval.num_crops))
    datasets = {p: view_dataset(cfg, *p) for p in protocols}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.train.precision]
    out = {}
    for name in ("best", "last"):
        classifier = load_classifier(run_dir / name, device)
        step = classifier.info["step"]
        if name == "last" and out["best"]["step"] == step:
            out[name] = out["best"]
            log_line(f"last (step {step}) is best: scored once")
            continue
        entry = {"step": step, "protocols": {}}
        for (segments, crops), dataset in datasets.items():
            start = time.perf_counter()
            scores = evaluate(classifier.logits, dataset, cfg.eval.batch_size, num_classes, device, autocast_dtype)
            key = f"{segments}x{crops}"
            if num_classes > CONFUSION_MAX_CLASSES:
                scores.pop("confusion")
            entry["protocols"][key] = {
                "segments": segments,
                "crops": crops,
                **scores,
                "seconds": round(time.perf_counter() - start, 3),
            }
            log_line(f"{name} (step {step}): {key} views top-1 {100 * scores['top1']:.1f}%")
        out[name] = entry
    return out


def run_finetune(cfg: FinetuneConfig, log_line: Callable[[str], None] | None = print) -> dict:
    """Fine-tune, test, and write results.json / results.md into run.dir; returns the results (rank 0) or {}."""
    log_line = log_line or (lambda _: None)
    start = time.perf_counter()
    check_data_sources(cfg.data)  # before the run directory exists
    if not cfg.data.val:
        raise ConfigError(
            "data.val",
            "is not set: fine-tuning scores its checkpoints on labelled validation videos "
            "(a CSV file or a class-per-folder tree)",
        )
    encoder, info = finetune_encoder(cfg)
    taken = resolve_protocol(cfg, encoder)
    if taken:
        log_line("from the encoder card: " + ", ".join(f"data.{k}={v}" for k, v in taken.items()))
    train_ds = build_dataset(cfg.data.train, cfg.data, train=True)
    val_ds = build_dataset(cfg.data.val, cfg.data, train=False)
    num_classes, classes = label_count(cfg, train_ds, val_ds)
    cfg.resolve_epochs(len(train_ds))
    torch.manual_seed(cfg.run.seed)  # the head's initial weights
    model = Classification(cfg, encoder, num_classes, classes)
    trainer = FinetuneTrainer(cfg, model)
    cfg = trainer.cfg  # train.precision resolved (`auto`)
    trained = time.perf_counter()
    trainer.fit()
    trained = time.perf_counter() - trained
    if not trainer.dist.is_main:
        return {}
    run_dir = Path(cfg.run.dir)
    tested = test_classifiers(cfg, run_dir, num_classes, log_line)
    counts = torch.bincount(torch.tensor([e.label for e in val_ds.entries]), minlength=num_classes)
    d = cfg.data
    results = FinetuneResults(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        checkpoint=cfg.finetune.checkpoint,
        encoder=info,
        train=str(d.train),
        val=str(d.val),
        num_classes=num_classes,
        classes=classes,
        num_train=len(train_ds),
        num_val=len(val_ds),
        steps=trainer.step,
        protocol={
            "frames_per_clip": d.frames_per_clip,
            "frame_step": d.frame_step,
            "fps": d.fps,
            "crop_size": d.crop_size,
        },
        chance=1.0 / num_classes,
        majority=float(counts.max() / counts.sum()),
        checkpoints=tested,
        seconds={"train": round(trained, 3), "total": round(time.perf_counter() - start, 3)},
        config=to_dict(cfg),
    )
    write_results(run_dir, results)
    return results.as_json()
