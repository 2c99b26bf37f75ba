"""The method-agnostic training loop.

    Trainer(cfg).fit()

knows optimisers, schedules, precision, accumulation, logging, monitors and torchrun - and nothing about any
method: it trains a `TrainingTask` (`task`: a pretraining method, or the fine-tuning classifier, which also
brings its own data and optimiser), which turns the batch entries it names into (loss, metrics). Its run
directory (`run_dir.RunDirectory`: config check, exclusive lock) and its checkpoints and exported encoders
(`checkpoint_manager.CheckpointManager`) are kept by their own objects.
Starting on a run directory that holds a checkpoint resumes it exactly (same losses, same
weights as an uninterrupted run); a config that conflicts with the saved one is refused, and so is a
directory another launch is training in. Step hooks (`hooks`, e.g. the online probe) run between steps without
touching the training.
"""

from __future__ import annotations

import logging
import math
import signal
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from videojepa.config.loader import save_config, to_dict
from videojepa.config.schema import PretrainConfig
from videojepa.data.build import build_dataset
from videojepa.data.loader import build_loader
from videojepa.data.transforms import normalization_constants, normalize_clips
from videojepa.encoder_io import ClipProtocol
from videojepa.errors import UserError
from videojepa.methods import build_method, check_config
from videojepa.models.roles import ROLES
from videojepa.optim.adamw import set_hyperparameters
from videojepa.optim.schedules import learning_rate, weight_decay
from videojepa.train.batches import split_entries, to_device
from videojepa.train.checkpoint_manager import CheckpointManager
from videojepa.train.compile import compile_blocks
from videojepa.train.distributed import DistInfo, all_reduce_mean, init_distributed
from videojepa.train.hooks import HookRunner, StepHook
from videojepa.train.logger import MetricsWriter, setup_logging
from videojepa.train.monitors import CollapseWatch, feature_health
from videojepa.train.parallel import gradient_sync, wrap_for_training
from videojepa.train.precision import resolve_train_precision
from videojepa.train.run_dir import RunDirectory
from videojepa.train.sources import HELD_OUT_CLIPS, check_data_sources
from videojepa.train.task import TrainingTask
from videojepa.utils.dtensor import full_value

log = logging.getLogger("videojepa.train")


class TrainingError(UserError):
    """Training cannot go on (e.g. too many non-finite steps in a row)."""


def step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def check_networks_declared(task: TrainingTask) -> None:
    """Every network a task holds has a declared role, so none is trained, frozen or saved by accident."""
    undeclared = [name for name, _ in task.named_children() if name not in task.networks]
    if undeclared:
        raise TypeError(
            f"method {task.name!r} holds networks without a role: {', '.join(undeclared)}; "
            f"add them to its `networks` (roles: trained, ema, frozen)"
        )


STD_METRICS = ("target_std", "context_std", "pred_std")


def host_values(record: dict) -> dict:
    """`record` with its tensor values read as Python numbers, all in one device-to-host copy."""
    keys = [k for k, v in record.items() if torch.is_tensor(v)]
    if not keys:
        return dict(record)
    tensors = [record[k].detach().float().reshape(()) for k in keys]
    values = torch.stack([t.to(tensors[0].device) for t in tensors]).tolist()
    return {**record, **dict(zip(keys, values))}


@dataclass
class Window:
    """Throughput counters between two full log records."""

    clips: int = 0
    time: float = 0.0
    wait: float = 0.0
    clipped: int = 0
    steps: int = 0

    def add(self, clips: int, seconds: float, waited: float, clipped: bool) -> None:
        self.clips, self.time, self.wait = self.clips + clips, self.time + seconds, self.wait + waited
        self.clipped, self.steps = self.clipped + int(clipped), self.steps + 1


class Trainer:
    def __init__(
        self,
        cfg: PretrainConfig,
        method: TrainingTask | None = None,
        dist_info: DistInfo | None = None,
        hooks: Sequence[StepHook] = (),
    ):
        self.cfg, self.train_cfg = cfg, cfg.train
        self.hooks = HookRunner(hooks)
        if cfg.train.online_probe is not None and not self.hooks.has("train.online_probe"):
            raise UserError(
                "train.online_probe is set but no online probe was given to the trainer: run `videojepa pretrain`, "
                "or pass hooks=[videojepa.eval.online.OnlineProbe(cfg)] to Trainer"
            )
        self.dist = dist_info or init_distributed()
        self.device = self.dist.device
        # `auto`: measured here, or the run's recorded one
        cfg, self.precision_note = resolve_train_precision(cfg, self.device)
        self.cfg, self.train_cfg = cfg, cfg.train
        self.run = RunDirectory(cfg.run.dir)
        self.run_dir = self.run.path
        if cfg.train.batch_size % (self.dist.world_size * cfg.train.accum_steps):
            raise UserError(
                f"train.batch_size={cfg.train.batch_size} must divide evenly into "
                f"{self.dist.world_size} processes x train.accum_steps={cfg.train.accum_steps}"
            )
        torch.manual_seed(cfg.run.seed)  # the same initial weights on every rank (FSDP2 shards what each rank built)
        if method is None:
            check_config(cfg)  # the method's rules across config sections
            method = build_method(cfg)  # (from model.init's weights when set)
        self.method = method.to(self.device)
        torch.manual_seed(cfg.run.seed + self.dist.rank)
        check_networks_declared(self.method)
        if cfg.train.compile:
            compiled = compile_blocks(self.method.modules_with_role(*ROLES), cfg.train.compile_backend)
            log.info("train.compile: %d transformer blocks compiled (backend %s)", compiled, cfg.train.compile_backend)
        self.model = wrap_for_training(self.method, cfg, self.dist)
        self.sharded = self.dist.grouped and cfg.train.parallel == "fsdp2"
        self.params = [p for _, p in self.method.trainable_parameters()]
        self.optimizer = self.method.build_optimizer(cfg.train)
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.train.precision]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.train.precision == "fp16")
        self.checkpoints = CheckpointManager(
            self.run_dir,
            self.method,
            self.optimizer,
            self.scaler,
            self.dist,
            self.sharded,
            ClipProtocol.from_data(cfg.data),
            to_dict(cfg),
        )
        self.step, self.skipped, self.nonfinite_in_row = 0, 0, 0
        self.collapse = CollapseWatch(cfg.train.collapse_std, cfg.train.collapse_rank)
        self.loader, self.health_video, self.metrics, self.bar = None, None, None, None
        self._stop_signal = None
        self.saved_steps = None  # train.steps of the run found in run.dir, if any

    # ----------------------------------------------------------------- setup
    def build_data(self) -> None:
        cfg = self.cfg
        check_data_sources(cfg.data)
        dataset, collate = self.method.training_data(cfg)
        per_rank = cfg.train.batch_size // self.dist.world_size
        if len(dataset) < per_rank:
            raise UserError(f"data.train has {len(dataset)} clips, fewer than one batch of {per_rank}")
        self.loader = build_loader(
            dataset, per_rank, cfg.data, cfg.run.seed, collate_fn=collate, distributed=self.dist.enabled
        )
        self.checkpoints.loader = self.loader
        # A fixed held-out batch for the health monitors: validation clips if any, else training
        # clips without augmentation.
        if not cfg.data.val:
            log.info(
                "data.val is not set: the health monitors' held-out batch is %d un-augmented training clips",
                HELD_OUT_CLIPS,
            )
        held_out = build_dataset(
            cfg.data.val or cfg.data.train, cfg.data, train=False, key="data.val" if cfg.data.val else "data.train"
        )
        count = min(len(held_out), HELD_OUT_CLIPS)
        self.health_video = torch.stack([held_out[i]["video"] for i in range(count)]).to(self.device)

    def prepare_run_dir(self) -> None:
        """Check that run.dir is this run's or new (config, no foreign files), then create it."""
        self.saved_steps = self.run.check(self.cfg)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> bool:
        """Run directory (checked, then locked), logging, data and resume; False when the run has already
        reached train.steps."""
        self.prepare_run_dir()
        self.run.lock(self.dist)  # before anything is written: a second launch leaves the first's files alone
        setup_logging(self.run_dir if self.dist.is_main else None, self.dist.is_main)
        log.info("%s", self.precision_note)
        self.build_data()
        resumed = self.resume()
        if self.dist.is_main:  # after a successful resume (or none): a run that cannot resume keeps its files
            save_config(self.cfg, self.run_dir / "config.yaml")
        if self.step >= self.train_cfg.steps:
            log.info("%s already trained for %d steps", self.run_dir, self.step)
            return False
        self.metrics = (
            MetricsWriter(self.run_dir / "metrics.jsonl", self.step if resumed else None) if self.dist.is_main else None
        )
        self.method.train()
        return True

    # ------------------------------------------------------------ state I/O
    def counters(self) -> dict:
        return {"step": self.step, "skipped": self.skipped, "nonfinite_in_row": self.nonfinite_in_row}

    def resume(self) -> bool:
        """Load the newest checkpoint that reads into the live state (an older one if the newest is damaged);
        False when the run has none. Raises CheckpointError, listing each, when none reads."""
        found = self.checkpoints.resume()
        if found is None:
            return False
        path, record = found
        self.step, self.skipped, self.nonfinite_in_row = record["step"], record["skipped"], record["nonfinite_in_row"]
        if self.saved_steps not in (None, self.train_cfg.steps):
            warnings.warn(
                f"train.steps changed from {self.saved_steps} to {self.train_cfg.steps}: schedules are "
                f"recomputed for the new length",
                stacklevel=2,
            )
        log.info(
            "resumed %s at step %d (saved on %s rank(s), now %d)",
            self.run_dir,
            self.step,
            record.get("world_size", 1),
            self.dist.world_size,
        )
        return True

    def save(self) -> None:
        """The checkpoint (every rank writes its part) and the exported encoder with its card (rank 0)."""
        self.checkpoints.save(self.counters(), self.train_cfg.keep_checkpoints)

    def exported_encoder(self) -> torch.nn.Module:
        """The network evaluation uses, with whole weights (gathered onto rank 0 under FSDP2)."""
        return self.checkpoints.exported_encoder()

    def video_to_device(self, batch: dict) -> torch.Tensor:
        """The batch's uint8 clips, copied to the device (non-blocking from pinned memory on CUDA), then flipped
        and normalised there: the workers send 4x fewer bytes and do no float work."""
        video = batch["video"].to(self.device, non_blocking=True)
        return normalize_clips(
            video,
            batch["flip"].to(self.device, non_blocking=True),
            *normalization_constants(self.cfg.data.mean, self.cfg.data.std),
        )

    # ------------------------------------------------------------------ step
    def train_step(self, *entries) -> dict:
        """One optimiser step (all micro-batches) on the task's batch entries (pretraining: video, masks);
        returns its metrics."""
        tc, step = self.train_cfg, self.step
        # randomness inside the step (drop path) is a function of (seed, step, rank): a resumed run, on any
        # number of ranks, draws what the uninterrupted one would have, with no RNG state to save
        torch.manual_seed(step_seed(self.cfg.run.seed, step, self.dist.rank))
        lr, wd = learning_rate(tc, step), weight_decay(tc, step)
        set_hyperparameters(self.optimizer, lr, wd)
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, metric_sums, method_metrics = 0.0, {}, {}
        rows = entries[0].shape[0]
        for i, part in enumerate(split_entries(entries, tc.accum_steps, rows)):
            last = i == tc.accum_steps - 1
            with (
                gradient_sync(self.model, self.method, enabled=last),
                torch.autocast(
                    self.device.type,
                    dtype=self.autocast_dtype or torch.float32,
                    enabled=self.autocast_dtype is not None,
                ),
            ):
                loss, metrics = self.model(*part)
            loss = loss / tc.accum_steps
            self.scaler.scale(loss).backward()
            loss_sum += loss.detach().float()
            for k, value in metrics.items():  # kept on the device: reading them here would wait for the GPU
                value = value.detach() if torch.is_tensor(value) else value
                metric_sums[k] = metric_sums.get(k, 0.0) + value / tc.accum_steps
        self.scaler.unscale_(self.optimizer)
        max_norm = tc.grad_clip if tc.grad_clip is not None else float("inf")
        # foreach: CPU's default is a slow per-tensor loop; under FSDP2 the norm is a DTensor over the shards
        grad_norm = full_value(torch.nn.utils.clip_grad_norm_(self.params, max_norm, foreach=True))
        loss_mean = all_reduce_mean(torch.as_tensor(loss_sum), self.dist)
        # the step's one host sync: whether it is applied depends on the loss and the norm being finite
        loss_value, norm_value = torch.stack([loss_mean.float(), grad_norm.float().to(loss_mean.device)]).tolist()
        applied, reason = self._optimizer_step(loss_value, norm_value)
        if applied:
            method_metrics = self.method.after_step(step)
            self.nonfinite_in_row = 0
        else:  # nothing of this step reaches the weights: no optimiser step, no EMA update
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            self.nonfinite_in_row += 1
            log.warning(
                "step %d: %s: step skipped (%d in a row, %d in all)", step, reason, self.nonfinite_in_row, self.skipped
            )
            if self.nonfinite_in_row >= tc.max_nonfinite_steps:
                raise TrainingError(
                    f"{self.nonfinite_in_row} non-finite steps in a row (train.max_nonfinite_steps="
                    f"{tc.max_nonfinite_steps}); last good checkpoint is in {self.run_dir}/checkpoints. "
                    f"Try a lower train.lr, train.grad_clip, or train.precision=fp32"
                )
        self.step += 1
        return {  # the method's metrics are 0-d tensors (on the device) until `host_values` reads them
            "step": self.step,
            "loss": loss_value,
            "lr": lr,
            "wd": wd,
            "grad_norm": norm_value,
            "clipped": norm_value > max_norm,
            "skipped": self.skipped,
            **metric_sums,
            **method_metrics,
        }

    def _optimizer_step(self, loss_value: float, grad_norm: float) -> tuple[bool, str]:
        """Apply the unscaled gradients unless the loss or a gradient is non-finite; returns (applied, why not).

        fp16: the GradScaler skips the optimiser step itself when a gradient overflowed and then lowers its
        scale; a lower scale after `update()` is how that skip is seen (it is the scaler's only overflow
        signal), and it counts as a skipped step like any other non-finite one."""
        if not math.isfinite(loss_value):
            if self.scaler.is_enabled():
                self.scaler.update()  # closes this step's unscale_(); the next step may unscale again
            return False, f"non-finite loss ({loss_value})"
        if not self.scaler.is_enabled():
            if not math.isfinite(grad_norm):
                return False, f"non-finite gradient norm ({grad_norm})"
            self.optimizer.step()
            return True, ""
        scale = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scaler.get_scale() < scale:
            return False, (
                f"fp16 gradient overflow (norm {grad_norm}): the scaler skipped the optimiser step "
                f"and lowered its scale from {scale:g} to {self.scaler.get_scale():g}"
            )
        return True, ""

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict:
        """Train to `train.steps`, resuming the run directory's newest checkpoint; returns the last full record."""
        tc, last, self.saved_at_boundary = self.train_cfg, {}, False
        try:
            if not self.start():
                return {"step": self.step}
            flops_per_clip, window, batches = self.flops_per_clip(), Window(), self.batches()
            self.hooks.start()
            self.bar = self.progress_bar()
            self._install_signal_handlers()
            if self.step == 0 and 0 in tc.encoder_snapshots:  # the initial weights, before any step
                self.checkpoints.save_snapshot(0)
            while self.step < tc.steps:
                started = time.perf_counter()
                entries = next(batches)
                waited = time.perf_counter() - started
                record = self.train_step(*entries)
                clips = entries[0].shape[0] * self.dist.world_size
                window.add(clips, time.perf_counter() - started, waited, record["clipped"])
                if self.metrics:
                    self.metrics.write("step", {"step": self.step, "loss": record["loss"]})
                if self.step % tc.log_every == 0 or self.step == tc.steps:
                    last, window = self.log_record(record, window, *flops_per_clip), Window()
                    self.show(record, last)
                self.bar.update(1)
                self.run_hooks()
                if self.save_or_stop():
                    break
        except KeyboardInterrupt:
            if not self.saved_at_boundary:
                # a second Ctrl-C, or one outside our handler, lands mid-step: the loader has moved on and the
                # optimiser may have stepped, so saving now would put an off-trajectory state under a step's name
                log.warning("interrupted mid-step: nothing saved; the run resumes from its last checkpoint")
            raise
        finally:
            self.finish()
        return last

    def run_hooks(self) -> None:
        """The step hooks due after this step, on the exported encoder (every rank exports; rank 0 runs them)."""
        self.hooks.run(self.step, self.train_cfg.steps, self.method, self.exported_encoder, self.dist, self.metrics)

    def save_or_stop(self) -> bool:
        """After a step: the periodic checkpoint and snapshots, and a stop signal's (every rank stops after the
        same step, so all save it together); True when training stops here."""
        tc = self.train_cfg
        stop = self.agreed_stop()
        if stop or self.step % tc.checkpoint_every == 0 or self.step == tc.steps:
            self.save()
        if self.step in tc.encoder_snapshots:
            self.checkpoints.save_snapshot(self.step)
        if stop:  # a step boundary: the saved state is on the uninterrupted trajectory
            log.warning("received signal %d: checkpoint saved at step %d, stopping", stop, self.step)
            if stop == signal.SIGINT:
                self.saved_at_boundary = True
                raise KeyboardInterrupt
        return bool(stop)

    def progress_bar(self) -> tqdm:
        return tqdm(
            total=self.train_cfg.steps,
            initial=self.step,
            disable=not self.dist.is_main,
            dynamic_ncols=True,
            desc=f"{self.method.name}",
            unit="step",
        )

    def show(self, record: dict, full: dict) -> None:
        """The progress bar's figures after a full log record."""
        self.bar.set_postfix(
            loss=f"{record['loss']:.4f}",
            lr=f"{record['lr']:.2e}",
            clips_s=f"{full['clips_per_s']:.1f}",
            rank=f"{full['feature_rank']:.1f}",
            data_wait=f"{full['data_wait_fraction']:.0%}",
        )

    def finish(self) -> None:
        """Signal handlers back, progress bar and metrics file closed, the run directory unlocked."""
        self._restore_signal_handlers()
        if self.bar is not None:
            self.bar.close()
        if self.metrics:
            self.metrics.close()
        self.run.unlock()

    def batches(self):
        """The task's batch entries (pretraining: video, masks) on the training device, epoch after epoch."""
        keys = self.method.batch_keys
        while True:
            for batch in self.loader:
                if "flip" in batch:  # uint8 clips (see datasets): flipped and normalised on the device
                    batch["video"] = self.video_to_device(batch)
                yield tuple(to_device(batch[key], self.device) for key in keys)

    def flops_per_clip(self) -> tuple[float, float]:
        """Training FLOPs per clip by the paper's rule and with attention, for the achieved FLOP/s report."""
        try:  # a report, never a reason to stop training
            return self.method.flops_per_clip(self.cfg)
        except UserError as err:
            log.warning("FLOP/s will not be reported: %s", err)
            return float("nan"), float("nan")

    def agreed_stop(self) -> int:
        """The signal any rank received (0: none), the same on every rank, so no rank waits alone in a collective."""
        signum = self._stop_signal or 0
        if self.dist.enabled:
            flag = torch.tensor([signum], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            signum = int(flag)
        return signum

    def log_record(self, record: dict, window: Window, flops_per_clip: float, flops_attn_per_clip: float) -> dict:
        record = host_values(record)  # the metrics' one read from the device, at a log step
        health = feature_health(self.method.health_encoder(), self.health_video)
        seconds = max(window.time, 1e-9)
        clips_per_s = window.clips / seconds
        full = {
            **record,
            **health,
            "clips_per_s": clips_per_s,
            "step_time": seconds / max(window.steps, 1),
            "data_wait_fraction": window.wait / seconds,
            "clip_rate": window.clipped / max(window.steps, 1),
            "flops_per_s": clips_per_s * flops_per_clip,
            "flops_per_s_with_attention": clips_per_s * flops_attn_per_clip,
        }
        watched = {**health, **{k: record[k] for k in ("target_std",) if k in record}}  # no stand-in for a missing one
        full["collapse_warning"] = self.collapse.check(self.step, watched)
        if self.metrics:
            self.metrics.write("log", full)
        # the std metrics the method reports (pixel methods add context_std; a classifier reports none)
        stds = " ".join(f"{k.removesuffix('_std')} std {record[k]:.3f}" for k in STD_METRICS if k in record)
        log.info(
            "step %d loss %.4f lr %.2e grad %.3f | %s%sfeature std %.3f rank %.1f | %.1f clips/s %.3g FLOP/s, "
            "data wait %.0f%%",
            self.step,
            record["loss"],
            record["lr"],
            record["grad_norm"],
            stds,
            " | " if stds else "",
            health["feature_std"],
            health["feature_rank"],
            clips_per_s,
            full["flops_per_s"],
            100 * full["data_wait_fraction"],
        )
        return full

    def _install_signal_handlers(self) -> None:
        """SIGTERM (cluster preemption) and a first Ctrl-C: finish the step, checkpoint, stop.

        Saving only at a step boundary keeps "exact resume" true on every path. A second Ctrl-C
        interrupts at once (the default handler is back) and saves nothing.
        """

        def handler(signum, frame):
            self._stop_signal = signum
            if signum == signal.SIGINT:
                signal.signal(signal.SIGINT, self._previous_handlers.get(signal.SIGINT, signal.default_int_handler))
                log.warning("Ctrl-C: finishing this step, then saving; press Ctrl-C again to stop without saving")

        self._stop_signal, self._previous_handlers = None, {}
        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous_handlers[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: signals stay with whoever owns them
            self._previous_handlers = {}

    def _restore_signal_handlers(self) -> None:
        for signum, previous in getattr(self, "_previous_handlers", {}).items():
            signal.signal(signum, previous)
        self._previous_handlers = {}
