"""The method-agnostic training loop.

    Trainer(cfg).fit()

knows optimisers, schedules, precision, accumulation, checkpoints, logging, monitors and
torchrun - and nothing about any method: a method turns (video, masks) into (loss, metrics).
Starting on a run directory that holds a checkpoint resumes it exactly (same losses, same
weights as an uninterrupted run); a config that conflicts with the saved one is refused.
"""
from __future__ import annotations

import contextlib
import logging
import math
import signal
import time
import warnings
from pathlib import Path

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel

from videojepa.config.loader import migrate_moved_keys, save_config, to_dict
from videojepa.config.schema import PretrainConfig
from videojepa.encoder_io import save_encoder
from videojepa.errors import UserError
from videojepa.masks import MaskCollator, MaskIndices, build_mask_generators
from videojepa.methods import Method, build_method
from videojepa.train import checkpoint as ckpt
from videojepa.train.distributed import DistInfo, all_reduce_mean, init_distributed
from videojepa.train.logger import MetricsWriter, setup_logging
from videojepa.train.monitors import CollapseWatch, feature_health
from videojepa.train.optim import build_optimizer, set_hyperparameters
from videojepa.train.schedules import learning_rate, weight_decay

log = logging.getLogger("videojepa.train")

# Keys that may differ when resuming: they change neither the weights nor the data order.
RESUME_FREE_KEYS = {"run.dir", "train.steps", "train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
                    "train.max_nonfinite_steps", "data.num_workers", "data.worker_timeout", "data.decode_threads",
                    "train.compile", "train.activation_checkpointing", "train.collapse_std", "train.collapse_rank"}


class TrainingError(UserError):
    """Training cannot go on (e.g. too many non-finite steps in a row)."""


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_conflicts(saved: dict, current: dict) -> list[str]:
    a, b = _flatten(saved), _flatten(current)
    return [f"{k}: run has {a.get(k)!r}, now {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if k not in RESUME_FREE_KEYS and a.get(k) != b.get(k)]


def split_batch(video: torch.Tensor, masks: list[MaskIndices], parts: int):
    size = video.shape[0] // parts
    for i in range(parts):
        sl = slice(i * size, (i + 1) * size)
        yield video[sl], [MaskIndices(m.context[sl], m.target[sl]) for m in masks]


def check_networks_declared(method: Method) -> None:
    """Every network a method holds has a declared role, so none is trained, frozen or saved by accident."""
    undeclared = [name for name, _ in method.named_children() if name not in method.networks]
    if undeclared:
        raise TypeError(f"method {method.name!r} holds networks without a role: {', '.join(undeclared)}; "
                        f"add them to its `networks` (roles: trained, ema, frozen)")


class Trainer:
    def __init__(self, cfg: PretrainConfig, method: Method | None = None, dist_info: DistInfo | None = None):
        self.cfg, self.train_cfg = cfg, cfg.train
        self.dist = dist_info or init_distributed()
        self.device = self.dist.device
        self.run_dir = Path(cfg.run.dir)
        if cfg.train.batch_size % (self.dist.world_size * cfg.train.accum_steps):
            raise UserError(f"train.batch_size={cfg.train.batch_size} must divide evenly into "
                            f"{self.dist.world_size} processes x train.accum_steps={cfg.train.accum_steps}")
        torch.manual_seed(cfg.run.seed + self.dist.rank)
        self.method = (method or build_method(cfg)).to(self.device)
        check_networks_declared(self.method)
        if cfg.train.compile:
            for module in self.method.modules_with_role("trained"):
                module.compile(dynamic=True)
        self.model = DistributedDataParallel(self.method) if self.dist.enabled else self.method
        self.params = [p for _, p in self.method.trainable_parameters()]
        self.optimizer = build_optimizer(self.method.trainable_parameters(), cfg.train)
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.train.precision]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.train.precision == "fp16")
        self.step, self.skipped, self.nonfinite_in_row = 0, 0, 0
        self.collapse = CollapseWatch(cfg.train.collapse_std, cfg.train.collapse_rank)
        self.loader, self.health_video, self.metrics = None, None, None
        self._stop_signal = None

    # ----------------------------------------------------------------- setup
    def build_data(self) -> None:
        from videojepa.data.datasets import build_dataset
        from videojepa.data.loader import build_loader

        cfg = self.cfg
        if not cfg.data.train:
            raise UserError("data.train is not set: give a CSV or folder of videos, e.g. `videojepa data synth --out "
                            "data/synth` then data.train=data/synth/motion/train.csv")
        dataset = build_dataset(cfg.data.train, cfg.data, train=True, uint8=True)  # see video_to_device
        collate = MaskCollator(build_mask_generators(cfg), seed=cfg.run.seed)
        per_rank = cfg.train.batch_size // self.dist.world_size
        if len(dataset) < per_rank:
            raise UserError(f"data.train has {len(dataset)} clips, fewer than one batch of {per_rank}")
        self.loader = build_loader(dataset, per_rank, cfg.data, cfg.run.seed, collate_fn=collate,
                                   distributed=self.dist.enabled)
        # A fixed held-out batch for the health monitors: validation clips if any, else training
        # clips without augmentation.
        held_out = build_dataset(cfg.data.val or cfg.data.train, cfg.data, train=False)
        count = min(len(held_out), 8)
        self.health_video = torch.stack([held_out[i]["video"] for i in range(count)]).to(self.device)

    def prepare_run_dir(self) -> dict | None:
        """Create or resume the run directory; returns the checkpoint to resume from."""
        run_dir, current = self.run_dir, to_dict(self.cfg)
        saved_path = run_dir / "config.yaml"
        state = None
        if saved_path.exists():
            saved = migrate_moved_keys(yaml.safe_load(saved_path.read_text()), str(saved_path))
            conflicts = config_conflicts(saved, current)
            if conflicts:
                raise UserError(f"{run_dir} holds a run with a different config; use another run.dir or the same "
                                f"settings. Differences: {'; '.join(conflicts)}")
            state = ckpt.load_latest(run_dir)
            if saved["train"]["steps"] != current["train"]["steps"] and state is not None:
                warnings.warn(f"train.steps changed from {saved['train']['steps']} to {current['train']['steps']}: "
                              f"schedules are recomputed for the new length", stacklevel=2)
        if self.dist.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, saved_path)
        return state

    # ------------------------------------------------------------ state I/O
    def state_dict(self) -> dict:
        return {"step": self.step, "method": self.method.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": ckpt.rng_state(),
                "loader": self.loader.state_dict() if self.loader is not None else None,
                "skipped": self.skipped, "nonfinite_in_row": self.nonfinite_in_row, "config": to_dict(self.cfg)}

    def load_state_dict(self, state: dict) -> None:
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        if self.loader is not None and state.get("loader") is not None:
            self.loader.load_state_dict(state["loader"])
        self.step, self.skipped = state["step"], state["skipped"]
        self.nonfinite_in_row = state["nonfinite_in_row"]

    def save(self) -> None:
        if not self.dist.is_main:
            return
        ckpt.save_checkpoint(self.run_dir, self.step, self.state_dict(), self.train_cfg.keep_checkpoints)
        d = self.cfg.data
        save_encoder(self.method.export_encoder(), self.run_dir / "encoder.safetensors",
                     data={"frames_per_clip": d.frames_per_clip, "frame_step": d.frame_step, "fps": d.fps,
                           "crop_size": d.crop_size, "mean": list(d.mean), "std": list(d.std)},
                     extra={"method": self.cfg.method.name, "step": self.step})

    def video_to_device(self, batch: dict) -> torch.Tensor:
        """The batch's uint8 clips, copied to the device (non-blocking from pinned memory on CUDA), then flipped
        and normalised there: the workers send 4x fewer bytes and do no float work."""
        from videojepa.data.transforms import normalization_constants, normalize_clips

        video = batch["video"].to(self.device, non_blocking=True)
        return normalize_clips(video, batch["flip"].to(self.device, non_blocking=True),
                               *normalization_constants(self.cfg.data.mean, self.cfg.data.std))

    # ------------------------------------------------------------------ step
    def train_step(self, video: torch.Tensor, masks: list[MaskIndices]) -> dict:
        """One optimiser step (all micro-batches); returns its metrics."""
        tc, step = self.train_cfg, self.step
        lr, wd = learning_rate(tc, step), weight_decay(tc, step)
        set_hyperparameters(self.optimizer, lr, wd)
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, metric_sums, method_metrics = 0.0, {}, {}
        for i, (v, m) in enumerate(split_batch(video, masks, tc.accum_steps)):
            last = i == tc.accum_steps - 1
            sync = self.model.no_sync() if (self.dist.enabled and not last) else contextlib.nullcontext()
            with sync, torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                      enabled=self.autocast_dtype is not None):
                loss, metrics = self.model(v, m)
            loss = loss / tc.accum_steps
            self.scaler.scale(loss).backward()
            loss_sum += loss.detach().float()
            for k, value in metrics.items():
                metric_sums[k] = metric_sums.get(k, 0.0) + float(value) / tc.accum_steps
        self.scaler.unscale_(self.optimizer)
        max_norm = tc.grad_clip if tc.grad_clip is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm, foreach=True)  # CPU's default is a slow loop
        loss_value = float(all_reduce_mean(torch.as_tensor(loss_sum), self.dist))
        # fp16's scaler handles overflowing gradients itself; otherwise they are a skipped step
        finite = math.isfinite(loss_value) and (self.scaler.is_enabled() or bool(torch.isfinite(grad_norm)))
        if finite:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            method_metrics = self.method.after_step(step)
            self.nonfinite_in_row = 0
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            self.nonfinite_in_row += 1
            log.warning("step %d: non-finite loss (%s) or gradient norm (%s): step skipped (%d in a row, %d in all)",
                        step, loss_value, float(grad_norm), self.nonfinite_in_row, self.skipped)
            if self.nonfinite_in_row >= tc.max_nonfinite_steps:
                raise TrainingError(f"{self.nonfinite_in_row} non-finite steps in a row (train.max_nonfinite_steps="
                                    f"{tc.max_nonfinite_steps}); last good checkpoint is in {self.run_dir}/checkpoints. "
                                    f"Try a lower train.lr, train.grad_clip, or train.precision=fp32")
        self.step += 1
        return {"step": self.step, "loss": loss_value, "lr": lr, "wd": wd,
                "grad_norm": float(grad_norm), "clipped": float(grad_norm) > max_norm, "skipped": self.skipped,
                **metric_sums, **method_metrics}

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict:
        from tqdm import tqdm

        from videojepa.flops import stage_flops

        tc = self.train_cfg
        state = self.prepare_run_dir()
        setup_logging(self.run_dir if self.dist.is_main else None, self.dist.is_main)
        self.build_data()
        if state is not None:
            self.load_state_dict(state)
            log.info("resumed %s at step %d", self.run_dir, self.step)
        if self.step >= tc.steps:
            log.info("%s already trained for %d steps", self.run_dir, self.step)
            return {"step": self.step}
        self.metrics = MetricsWriter(self.run_dir / "metrics.jsonl", self.step if state is not None else None) \
            if self.dist.is_main else None
        try:  # achieved FLOP/s is a report, never a reason to stop training
            flops = stage_flops(self.cfg, measured_masks=True)
            flops_per_clip = flops["flops_per_step"] / tc.batch_size
            flops_attn_per_clip = flops["flops_per_step_with_attention"] / tc.batch_size
        except UserError as err:
            log.warning("FLOP/s will not be reported: %s", err)
            flops_per_clip = flops_attn_per_clip = float("nan")
        self._install_signal_handlers()
        bar = tqdm(total=tc.steps, initial=self.step, disable=not self.dist.is_main, dynamic_ncols=True,
                   desc=f"{self.cfg.method.name}", unit="step")
        window = {"clips": 0, "time": 0.0, "wait": 0.0, "clipped": 0, "steps": 0}
        self.method.train()
        batches = iter(self.loader)
        last = {}
        try:
            while self.step < tc.steps:
                started = time.perf_counter()
                try:
                    batch = next(batches)
                except StopIteration:
                    batches = iter(self.loader)
                    batch = next(batches)
                video = self.video_to_device(batch)
                masks = [MaskIndices(m.context.to(self.device), m.target.to(self.device)) for m in batch["masks"]]
                waited = time.perf_counter() - started
                record = self.train_step(video, masks)
                elapsed = time.perf_counter() - started
                window["clips"] += video.shape[0] * self.dist.world_size
                window["time"] += elapsed
                window["wait"] += waited
                window["clipped"] += record["clipped"]
                window["steps"] += 1
                if self.metrics:
                    self.metrics.write("step", {"step": self.step, "loss": record["loss"]})
                if self.step % tc.log_every == 0 or self.step == tc.steps:
                    last = self.log_record(record, window, flops_per_clip, flops_attn_per_clip)
                    window = {k: 0 for k in window}
                    bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}",
                                    clips_s=f"{last['clips_per_s']:.1f}", rank=f"{last['feature_rank']:.1f}",
                                    data_wait=f"{last['data_wait_fraction']:.0%}")
                bar.update(1)
                if self.step % tc.checkpoint_every == 0 or self.step == tc.steps:
                    self.save()
                if self._stop_signal is not None:
                    log.warning("received signal %d: checkpoint saved at step %d, stopping", self._stop_signal, self.step)
                    self.save()
                    break
        except KeyboardInterrupt:
            log.warning("interrupted: saving a checkpoint at step %d", self.step)
            self.save()
            raise
        finally:
            bar.close()
            if self.metrics:
                self.metrics.close()
        return last

    def log_record(self, record: dict, window: dict, flops_per_clip: float, flops_attn_per_clip: float) -> dict:
        health = feature_health(self.method.health_encoder(), self.health_video)
        seconds = max(window["time"], 1e-9)
        clips_per_s = window["clips"] / seconds
        full = {**record, **health, "clips_per_s": clips_per_s, "step_time": seconds / max(window["steps"], 1),
                "data_wait_fraction": window["wait"] / seconds, "clip_rate": window["clipped"] / max(window["steps"], 1),
                "flops_per_s": clips_per_s * flops_per_clip, "flops_per_s_with_attention": clips_per_s * flops_attn_per_clip}
        full["collapse_warning"] = self.collapse.check(self.step, {**health, "target_std": record.get("target_std", 1.0)})
        if self.metrics:
            self.metrics.write("log", full)
        log.info("step %d loss %.4f lr %.2e grad %.3f | target std %.3f pred std %.3f | feature std %.3f rank %.1f | "
                 "%.1f clips/s %.3g FLOP/s, data wait %.0f%%", self.step, record["loss"], record["lr"], record["grad_norm"],
                 record.get("target_std", float("nan")), record.get("pred_std", float("nan")), health["feature_std"],
                 health["feature_rank"], clips_per_s, full["flops_per_s"], 100 * full["data_wait_fraction"])
        return full

    def _install_signal_handlers(self) -> None:
        """SIGTERM (cluster preemption): finish the step, checkpoint, exit cleanly."""
        def handler(signum, frame):
            self._stop_signal = signum

        try:
            signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread
            pass
