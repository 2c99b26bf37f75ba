"""Every GPU figure the project needs, from one process on one GPU, in at most 7 minutes (`gpu_check.sh` runs it).

    python3 benchmarks/gpu_check.py --out gpu_check_out            # on a CUDA machine (via gpu_check.sh)
    python3 benchmarks/gpu_check.py --dry-run --out gpu_check_out  # tiny sizes on CPU: the same rows and JSON

Order of work (each row's result is written to OUT/results.json as soon as it is known):
  preflight  torch / CUDA / driver versions, the GPU, the imports, one bf16 flash-attention call per head size
  peak       one matmul sweep (bf16, the models' shapes): the same-run peak every MFU is also given against
  estimate   the expected seconds of every row from its FLOPs and the datasheet peak, printed before any row
  rows       V-JEPA ViT-L/16 (`vjepa/vitl16`, the paper recipe), bf16 eager: batch 24 and the largest batch
             the memory estimator fits on this card, each with and without activation checkpointing (the
             batch-24 row also runs one step under CUDA's sync debug mode and one profiled step); the SALT
             student with a frozen bf16 ViT-L teacher and the SALT teacher (pixel decoder), batch 24; ViT-g
             at batch 8 with and without checkpointing; a tiny config's losses on the GPU against the CPU;
             about 60 s of `Trainer.fit` on synthetic 224-px videos (workers = cores - 1, uint8 path) with a
             checkpoint saved and resumed on the GPU and RankMe timed there; inductor compile of the ViT-L
             row with 20 steps of varying mask lengths.
Each model row reports clips/s, MFU against the datasheet's dense bf16 peak and against the same-run matmul
peak, and the memory estimator's bytes at the timed batch's exact mask lengths beside max_memory_allocated
and max_memory_reserved. A row that would overrun the time budget is skipped (and says so); an out-of-memory
row records the error and the check goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_train, imported once the preflight passed

GIB = 2**30
# --plan: the memory torch reports for these cards (bytes) and their dense bf16 datasheet peak (FLOP/s)
PLAN_CARDS = {"H100": (85_045_870_592, 989e12), "H200": (150_119_219_200, 989e12)}
HEAD_DIMS = (64, 32, 88)  # ViT-L (1024 / 16), the predictor (384 / 12), ViT-g (1408 / 16)


class RowTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise RowTimeout in this (main) thread after `seconds` (checked whenever Python code runs)."""

    def expire(signum, frame):
        raise RowTimeout(f"over its {seconds:.0f} s limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------------------- sizes


class Sizes:
    """What the rows run: the real sizes on a GPU, tiny ones for the CPU dry run (same code paths)."""

    def __init__(self, dry: bool):
        self.dry = dry
        if dry:
            self.shrink = [
                "model.name=vit_pico",
                "model.patch_size=8",
                "data.crop_size=32",
                "data.frames_per_clip=8",
                "predictor.depth=1",
                "predictor.embed_dim=32",
                "predictor.num_heads=2",
            ]
            self.giant = ["model.name=vit_nano"]
            self.teacher = "vit_pico"
            self.batch, self.giant_batch, self.max_batch = 4, 2, 16
            self.warmup, self.min_timed_s, self.min_steps = 1, 0.0, 2
            self.compile_backend = "aot_eager"  # inductor's C++ code generation takes minutes on a small CPU
            self.fit_seconds, self.fit_videos, self.fit_frames, self.fit_size = 8, 24, 16, 32
            self.log_every = 2
            self.compile_steps = 4
            self.fit_extra = ["data.frames_per_clip=8", "data.frame_step=1", "train.batch_size=4"]
        else:
            self.shrink = []
            self.giant = ["model.name=vit_giant"]
            self.teacher = "vit_large"
            self.batch, self.giant_batch, self.max_batch = 24, 8, 512
            self.warmup, self.min_timed_s, self.min_steps = 2, 4.0, 3
            self.compile_backend = "inductor"
            self.fit_seconds, self.fit_videos, self.fit_frames, self.fit_size = 60, 128, 64, 224
            self.log_every = 10
            self.compile_steps = 20
            self.fit_extra = ["train.batch_size=24"]


# ----------------------------------------------------------------------------- helpers


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def quiet_trainer(cfg, device, build_on_device: bool = False):
    """A trainer on `device`; `build_on_device`: the networks are created (and initialised) there, not on the
    CPU and copied (seconds saved for ViT-g; other random initial weights than a CPU build)."""
    from videojepa.train.distributed import DistInfo
    from videojepa.train.trainer import Trainer

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if build_on_device and device.type == "cuda":
            try:
                with torch.device(device):
                    return Trainer(cfg, dist_info=DistInfo(device=device))
            except Exception as err:  # noqa: BLE001 - fall back to the ordinary CPU build
                print(f"building on {device} failed ({type(err).__name__}: {err}); building on the CPU", flush=True)
                free_memory()
        return Trainer(cfg, dist_info=DistInfo(device=device))


def fixed_batch(cfg, device, seed: int = 0, drawn_on=None):
    """Random clips and one mask sample for `train.batch_size` clips, on the device, and their lengths. The
    clips are drawn on `drawn_on` (default: the device itself; the CPU where two devices must see one batch)."""
    from videojepa.masks import MaskCollator, MaskIndices, build_mask_generators

    batch = cfg.train.batch_size
    shape = (batch, 3, cfg.data.frames_per_clip, cfg.data.crop_size, cfg.data.crop_size)
    drawn_on = torch.device(drawn_on or device)
    video = torch.randn(shape, generator=torch.Generator(drawn_on).manual_seed(seed), device=drawn_on).to(device)
    masks = [
        MaskIndices(m.context.to(device), m.target.to(device))
        for m in MaskCollator(build_mask_generators(cfg), seed=0).sample(batch, seed=seed)
    ]
    return video, masks, [(m.context.shape[1], m.target.shape[1]) for m in masks]


def step_flops(cfg, lengths) -> tuple[float, float]:
    from videojepa.methods.accounting import step_components

    parts = step_components(cfg, lengths=lengths)
    flops = sum(c.flops for c in parts)
    return flops, flops + sum(c.attention_flops for c in parts)


def memory_estimate(cfg, lengths, checkpointing: bool) -> dict:
    """The estimator's bytes for one process (no DDP) at exactly these mask lengths."""
    from videojepa.memory import stage_memory

    doc = stage_memory(cfg, 1, lengths=lengths)["ddp"]["checkpointing" if checkpointing else "no_checkpointing"]
    return {k: v for k, v in doc.items() if k != "fits"}


def largest_batch(cfg_for, usable: float, limit: int) -> int:
    """The largest batch (<= limit, >= 1) whose estimate fits in `usable` bytes, at the sampler's mean mask
    lengths for that batch. Those depend on the batch up to 64 clips (the collator cuts every clip's context
    to the batch's shortest, and the sampler's statistics use min(batch, 64) clips); from 64 clips on they are
    fixed and the estimate is affine in the batch (states + batch x activations per clip)."""
    from videojepa.flops import mask_lengths
    from videojepa.memory import stage_memory

    def total(batch: int, lengths=None) -> float:
        cfg = cfg_for(batch)
        key = "checkpointing" if cfg.train.activation_checkpointing else "no_checkpointing"
        return stage_memory(cfg, 1, lengths=lengths)["ddp"][key]["total"]

    if limit >= 64 and total(64) <= usable:
        lengths = mask_lengths(cfg_for(64), measured=True)
        at64, at128 = total(64, lengths), total(128, lengths)
        per_clip = (at128 - at64) / 64
        batch = max(64, min(limit, int((usable - (at64 - 64 * per_clip)) // per_clip)))
        while batch > 64 and total(batch, lengths) > usable:  # rounding
            batch -= 1
        return batch
    low, high = 1, min(limit, 64)
    if total(high) <= usable:
        return high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if total(mid) <= usable else (low, mid)
    return low


def time_steps(trainer, video, masks, warmup: int, device, min_s: float, min_steps: int, max_steps: int = 8):
    """Step times after `warmup` steps: at least `min_steps` and `min_s` seconds, at most `max_steps`."""
    for _ in range(warmup):
        trainer.train_step(video, masks)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    while len(times) < max_steps and (len(times) < min_steps or sum(times) < min_s):
        sync(device)
        start = time.perf_counter()
        trainer.train_step(video, masks)
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def steps_for(step_s: float, warmup: int, min_s: float, min_steps: int) -> float:
    """How many steps `time_steps` runs (warmup included) when a step takes `step_s`."""
    return warmup + max(min_steps, min(8, math.ceil(min_s / max(step_s, 1e-9))))


class Check:
    def __init__(self, args):
        self.args, self.dry = args, args.dry_run
        self.sizes = Sizes(self.dry)
        self.device = torch.device("cpu" if self.dry else "cuda")
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        # scratch (runs, videos) outside OUT: only the result files may come back from a GPU machine
        self.work = Path(args.work or tempfile.mkdtemp(prefix="videojepa_gpu_check_"))
        self.started = time.perf_counter()
        self.doc = {"dry_run": self.dry, "budget_s": args.budget_s, "rows": {}, "estimate_s": {}}
        self.peak = None
        self.datasheet = None

    # ------------------------------------------------------------------ bookkeeping
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def write(self) -> None:
        self.doc["elapsed_s"] = round(self.elapsed(), 1)
        path = self.out / "results.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.doc, indent=2, default=str))
        os.replace(tmp, path)

    def say(self, text: str) -> None:
        print(f"[{self.elapsed():6.1f}s] {text}", flush=True)

    def row(self, name: str, fn, limit: float | None = None) -> None:
        """Run one row within its own limit and the budget; its result (or why there is none) goes to the JSON."""
        estimate = self.doc["estimate_s"].get(name, 10.0)
        left = self.args.budget_s - self.elapsed()
        if self.args.only and name not in self.args.only:
            return
        if estimate > left:
            self.doc["rows"][name] = {"skipped": f"estimated {estimate:.0f} s, {left:.0f} s of the budget left"}
            self.say(f"{name}: skipped (estimated {estimate:.0f} s, {left:.0f} s left)")
            self.write()
            return
        limit = min(limit or max(3 * estimate, estimate + 30), left)
        start = time.perf_counter()
        try:
            with time_limit(limit):
                result = fn()
        except torch.cuda.OutOfMemoryError as err:
            result = {"error": "out of memory", "detail": str(err).splitlines()[0]}
        except RowTimeout as err:
            result = {"error": f"stopped: {err}"}
        except Exception as err:  # a row that fails must not cost the others
            result = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(limit=6)}
        result["seconds"] = round(time.perf_counter() - start, 2)
        result["estimated_s"] = round(estimate, 1)
        self.doc["rows"][name] = result
        free_memory()
        shown = {k: v for k, v in result.items() if k in SUMMARY_KEYS}
        self.say(f"{name}: {json.dumps(shown, default=str)}")
        self.write()

    # ------------------------------------------------------------------ preflight, peak, estimate
    def preflight(self) -> None:
        """Versions, the GPU and what the rows import; a bf16 flash-attention call per head size. Any problem
        stops the check here with one line."""
        info = {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        }
        for module in ("numpy", "yaml", "pydantic", "pydantic_core", "safetensors", "tqdm", "av", "videojepa"):
            try:
                imported = __import__(module)
            except Exception as err:  # noqa: BLE001 - missing, or broken on import: one line either way
                raise SystemExit(f"preflight: cannot import {module} ({type(err).__name__}: {err})") from None
            info[f"{module}_version"] = getattr(imported, "__version__", "?")
        from videojepa.utils.precision import cpu_model

        info["cpu"] = cpu_model()
        if not self.dry:
            if not torch.cuda.is_available():
                raise SystemExit(f"preflight: torch {torch.__version__} sees no CUDA device")
            info["gpu"] = torch.cuda.get_device_name(0)
            props = torch.cuda.get_device_properties(0)
            info["gpu_memory_bytes"] = props.total_memory
            info["capability"] = f"{props.major}.{props.minor}"
            info["driver"] = driver_version()
            from torch.nn.attention import SDPBackend, sdpa_kernel

            for head_dim in HEAD_DIMS:
                q = torch.randn(2, 16, 1568, head_dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                try:
                    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                        torch.nn.functional.scaled_dot_product_attention(q, q, q).sum().backward()
                    torch.cuda.synchronize()
                except RuntimeError as err:
                    raise SystemExit(f"preflight: bf16 flash attention fails at head dim {head_dim}: {err}") from None
            info["flash_attention_head_dims"] = list(HEAD_DIMS)
            from bench_train import CARD_BF16_PEAK

            name = info["gpu"]
            self.datasheet = self.args.card_peak or next((p for k, p in CARD_BF16_PEAK.items() if k in name), None)
            from videojepa.train.distributed import use_tf32

            use_tf32()
        info["datasheet_bf16_peak_flops_per_s"] = self.datasheet
        self.doc["preflight"] = info
        self.say("preflight: " + ", ".join(f"{k} {v}" for k, v in info.items() if not k.endswith("_version")))
        self.write()

    def measure_peak(self) -> None:
        from bench_train import matmul_peak

        start = time.perf_counter()
        windows = 2 if self.dry else 4
        self.peak = matmul_peak(torch.bfloat16, self.device, windows=windows, window_s=0.1 if self.dry else 0.25)
        self.doc["matmul_peak_bf16_flops_per_s"] = self.peak
        self.doc["matmul_peak_seconds"] = round(time.perf_counter() - start, 2)
        self.say(f"same-run bf16 matmul peak {self.peak / 1e12:.3f} TFLOP/s")
        self.write()

    # ------------------------------------------------------------------ configs
    def config(self, preset: str, *overrides: str, batch: int | None = None, ac: bool = False, run: str = "row"):
        from videojepa.config import load_config

        return load_config(
            preset,
            [
                *self.sizes.shrink,
                *overrides,
                f"train.batch_size={batch or self.sizes.batch}",
                f"train.activation_checkpointing={ac}",
                "train.precision=bf16",
                f"run.dir={self.work / run}",
            ],
        )

    def salt_student(self, batch=None, ac=False):
        return self.config(
            "salt/vitl16_student",
            "method.teacher.checkpoint=null",
            f"method.teacher.model={self.sizes.teacher}",
            batch=batch,
            ac=ac,
        )

    def model_rows(self) -> list[tuple[str, callable]]:
        s = self.sizes
        usable = self.usable_bytes()
        vitl = lambda batch, ac: self.config("vjepa/vitl16", batch=batch, ac=ac)  # noqa: E731
        big = largest_batch(lambda b: vitl(b, False), usable, s.max_batch)
        big_ac = largest_batch(lambda b: vitl(b, True), usable, s.max_batch)
        self.doc["largest_batch_by_estimate"] = {
            "usable_bytes": usable,
            "no_checkpointing": big,
            "checkpointing": big_ac,
        }
        giant = lambda ac: self.config("vjepa/vitl16", *s.giant, batch=s.giant_batch, ac=ac)  # noqa: E731
        return [
            ("vitl_b24", lambda: vitl(s.batch, False)),
            ("vitl_b24_ac", lambda: vitl(s.batch, True)),
            (f"vitl_b{big}_max", lambda: vitl(big, False)),
            (f"vitl_b{big_ac}_max_ac", lambda: vitl(big_ac, True)),
            ("salt_student_b24", lambda: self.salt_student()),
            ("salt_teacher_b24", lambda: self.config("salt/vitl16_teacher")),
            ("vitg_b8", lambda: giant(False)),
            ("vitg_b8_ac", lambda: giant(True)),
        ]

    def usable_bytes(self) -> float:
        from videojepa.memory import RESERVE

        if self.dry:  # a pretend 1 GiB card: the search runs, the batch stays small
            return 1 * GIB - RESERVE / 4
        if self.args.plan:
            return PLAN_CARDS[self.args.plan][0] - RESERVE
        return torch.cuda.get_device_properties(0).total_memory - RESERVE

    def estimate(self, rows) -> None:
        """Seconds per row from its FLOPs at an assumed 30% of the datasheet peak (the measured peak on CPU),
        plus building the networks; printed, and kept to skip what would overrun the budget."""
        from videojepa.memory import method_networks

        rate = (self.datasheet or self.peak) * 0.3
        est = {}
        for name, make in rows:
            cfg = make()
            step = (
                step_flops(cfg, mask_lengths_of(cfg))[0] * (4 / 3 if cfg.train.activation_checkpointing else 1) / rate
            )
            params = sum(n.params for n in method_networks(cfg)[0])
            steps = steps_for(step, self.sizes.warmup, self.sizes.min_timed_s, self.sizes.min_steps)
            est[name] = steps * step + 2.0 + 4.0 * params / 1e9
        vitl = rows[0][1]()
        step = step_flops(vitl, mask_lengths_of(vitl))[0] / rate
        est[rows[0][0]] += 2 * step + 3  # the sync-debug and profiled steps
        est["gpu_vs_cpu"] = 3.0 if self.dry else 8.0
        est["fit"] = self.sizes.fit_seconds + (15.0 if self.dry else 45.0)  # + videos, a ViT-L checkpoint
        est["compile"] = (15.0 if self.dry else 100.0) + self.sizes.compile_steps * step
        self.doc["estimate_s"] = {k: round(v, 1) for k, v in est.items()}
        self.doc["estimate_total_s"] = round(sum(est.values()) + self.elapsed(), 1)
        self.say(
            f"estimate: {self.doc['estimate_total_s']:.0f} s in all (budget {self.args.budget_s:.0f} s; "
            f"{'the measured CPU' if self.dry else 'the datasheet'} peak x 0.3): "
            + ", ".join(f"{k} {v:.0f}" for k, v in est.items())
        )
        self.write()

    # ------------------------------------------------------------------ rows
    def model_row(self, name: str, make, extras: bool = False) -> dict:
        cfg = make()
        build = time.perf_counter()
        trainer = quiet_trainer(cfg, self.device, build_on_device=True)
        build = time.perf_counter() - build
        video, masks, lengths = fixed_batch(cfg, self.device)
        s = self.sizes
        times = time_steps(trainer, video, masks, s.warmup, self.device, s.min_timed_s, s.min_steps)
        step = statistics.median(times)
        flops, flops_attn = step_flops(cfg, lengths)
        batch = cfg.train.batch_size
        result = {
            "config": f"{cfg.method.name} {cfg.model.name} {cfg.data.frames_per_clip}x{cfg.data.crop_size}^2",
            "batch": batch,
            "activation_checkpointing": cfg.train.activation_checkpointing,
            "mask_lengths": lengths,
            "build_s": build,
            "step_s": step,
            "step_times_s": times,
            "clips_per_s": batch / step,
            "flops_per_step": flops,
            "flops_per_step_with_attention": flops_attn,
            "mfu_vs_same_run_matmul_peak": flops / step / self.peak,
            "mfu_with_attention_vs_same_run_matmul_peak": flops_attn / step / self.peak,
        }
        if self.datasheet:
            result["mfu_vs_datasheet_bf16_peak"] = flops / step / self.datasheet
            result["mfu_with_attention_vs_datasheet_bf16_peak"] = flops_attn / step / self.datasheet
        estimate = memory_estimate(cfg, lengths, cfg.train.activation_checkpointing)
        result["memory_estimate_bytes"] = estimate
        if self.device.type == "cuda":
            allocated = torch.cuda.max_memory_allocated(self.device)
            reserved = torch.cuda.max_memory_reserved(self.device)
            result.update(
                max_memory_allocated=allocated,
                max_memory_reserved=reserved,
                estimate_over_allocated=estimate["total"] / allocated,
                estimate_over_reserved=estimate["total"] / reserved,
            )
        if extras:
            result["host_syncs"] = self.sync_debug_step(trainer, video, masks)
            result["profile"] = self.profiled_step(trainer, video, masks)
        del trainer, video, masks
        return result

    def sync_debug_step(self, trainer, video, masks) -> dict:
        """One step under CUDA's sync debug mode (every synchronising call warns), and the host reads made by
        videojepa's own code (the stand-in the CPU tests use: it also counts on the dry run)."""
        reads = count_host_reads()
        with warnings.catch_warnings(record=True) as caught, reads:
            warnings.simplefilter("always")
            if self.device.type == "cuda":
                torch.cuda.set_sync_debug_mode("warn")
            try:
                trainer.train_step(video, masks)
            finally:
                if self.device.type == "cuda":
                    torch.cuda.set_sync_debug_mode(0)
        sync(self.device)
        places: dict[str, int] = {}
        for w in caught:
            if "synchroniz" in str(w.message).lower():
                key = f"{Path(w.filename).name}:{w.lineno}"
                places[key] = places.get(key, 0) + 1
        return {
            "cuda_sync_warnings": sum(places.values()) if self.device.type == "cuda" else None,
            "cuda_sync_places": places,
            "videojepa_host_reads": reads.calls,
        }

    def profiled_step(self, trainer, video, masks) -> dict:
        """One step under torch.profiler: the GPU-busy fraction (union of kernel intervals over the step's span)."""
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            trainer.train_step(video, masks)
            sync(self.device)
        events = prof.events()
        kernels = sorted(
            (e.time_range.start, e.time_range.end) for e in events if e.device_type == torch.autograd.DeviceType.CUDA
        )
        span_start = min(e.time_range.start for e in events)
        span_end = max(e.time_range.end for e in events)
        busy, current_start, current_end = 0.0, None, None
        for start, end in kernels:
            if current_end is None or start > current_end:
                if current_end is not None:
                    busy += current_end - current_start
                current_start, current_end = start, end
            else:
                current_end = max(current_end, end)
        if current_end is not None:
            busy += current_end - current_start
        sort = "self_device_time_total" if kernels else "self_cpu_time_total"
        top = [
            {"op": a.key, "self_us": getattr(a, sort, None), "calls": a.count}
            for a in sorted(prof.key_averages(), key=lambda a: -(getattr(a, sort, 0) or 0))[:12]
        ]
        return {
            "span_us": span_end - span_start,
            "kernels": len(kernels),
            "gpu_busy_fraction": busy / (span_end - span_start) if kernels else None,
            "top_ops_by": sort,
            "top_ops": top,
        }

    def gpu_vs_cpu(self) -> dict:
        """A tiny V-JEPA config, same weights and batch, three steps on the CPU in fp32 and on the device in
        bf16 (the dry run: the CPU in bf16): the losses agree within bf16 rounding."""
        from videojepa.config import load_config

        tiny = [
            "model.name=vit_pico",
            "model.patch_size=8",
            "data.crop_size=32",
            "data.frames_per_clip=8",
            "predictor.depth=1",
            "predictor.embed_dim=32",
            "predictor.num_heads=2",
            "train.batch_size=4",
            "train.warmup_steps=1",
        ]
        losses = {}
        for name, device, precision in (("cpu_fp32", "cpu", "fp32"), ("device_bf16", self.device, "bf16")):
            cfg = load_config("vjepa/vitl16", tiny + [f"train.precision={precision}", f"run.dir={self.work}/tiny"])
            trainer = quiet_trainer(cfg, torch.device(device))
            video, masks, _ = fixed_batch(cfg, torch.device(device), drawn_on="cpu")  # the same clips on both
            losses[name] = [trainer.train_step(video, masks)["loss"] for _ in range(3)]
        diffs = [abs(a - b) / abs(a) for a, b in zip(losses["cpu_fp32"], losses["device_bf16"])]
        return {**losses, "relative_differences": diffs, "within_bf16_tolerance": max(diffs) < 2e-2}

    def fit(self) -> dict:
        """`Trainer.fit` for about fit_seconds on synthetic videos (uint8 items, workers = cores - 1), stopped
        the way a preemption stops it (checkpoint at a step boundary); the checkpoint is then resumed by a new
        trainer and both continue on the same three batches: their losses must agree."""
        from videojepa.config import load_config
        from videojepa.data.synth import write_dataset
        from videojepa.train.logger import read_metrics
        from videojepa.train.monitors import rankme

        s = self.sizes
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        data = self.work / "synth"
        start = time.perf_counter()
        write_dataset(
            str(data), num_videos=s.fit_videos, frames=s.fit_frames, size=s.fit_size, workers=max(1, cores - 1),
            val_fraction=0.1, force=True,
        )  # fmt: skip
        render_s = time.perf_counter() - start
        run = self.work / "fit"
        overrides = [
            *self.sizes.shrink,
            f"data.train={data}/motion/train.csv",
            f"data.val={data}/motion/val.csv",
            "data.random_resize_scale=[0.3,1.0]",
            *s.fit_extra,
            "train.steps=1000000",
            f"train.log_every={s.log_every}",
            "train.checkpoint_every=1000000",
            "train.precision=bf16",
            f"run.dir={run}",
        ]
        if run.exists():
            import shutil

            shutil.rmtree(run)
        cfg = load_config("vjepa/vitl16", overrides)
        trainer = quiet_trainer(cfg, self.device, build_on_device=True)
        stop_at = time.perf_counter() + s.fit_seconds
        trainer.agreed_stop = lambda: signal.SIGTERM if time.perf_counter() > stop_at else 0  # a preemption
        fit_start = time.perf_counter()
        trainer.fit()
        fit_s = time.perf_counter() - fit_start
        records = read_metrics(run, kind="log")
        steady = records[1:] or records
        step = trainer.step
        result = {
            "workers": cfg.data.num_workers,
            "render_videos_s": render_s,
            "fit_s": fit_s,
            "steps": step,
            "batch": cfg.train.batch_size,
            "clips_per_s_by_log_window": [r["clips_per_s"] for r in records],
            "data_wait_fraction_by_log_window": [r["data_wait_fraction"] for r in records],
            "clips_per_s_steady": statistics.median(r["clips_per_s"] for r in steady) if steady else None,
            "data_wait_fraction_steady": statistics.median(r["data_wait_fraction"] for r in steady) if steady else None,
            "feature_rank_by_log_window": [r["feature_rank"] for r in records],
        }
        # RankMe of the held-out batch on the device: the Gram path the trainer uses, and the SVD it replaced
        with torch.no_grad():
            encoder = trainer.method.health_encoder()
            features = encoder(trainer.health_video).float()
        sync(self.device)
        t = time.perf_counter()
        result["rankme"] = rankme(features)
        result["rankme_s"] = time.perf_counter() - t
        result["rankme_features_shape"] = list(features.flatten(0, -2).shape)
        try:
            sync(self.device)
            t = time.perf_counter()
            torch.linalg.svdvals(features.flatten(0, -2))
            sync(self.device)
            result["svdvals_s"] = time.perf_counter() - t
        except RuntimeError as err:
            result["svdvals_error"] = str(err).splitlines()[0]
        # resume on the device: the trainer that stopped and a new one from its checkpoint, same three batches
        batches = trainer.batches()
        continued = [next(batches) for _ in range(3)]
        before = [trainer.train_step(*entries)["loss"] for entries in continued]
        resumed = quiet_trainer(cfg, self.device, build_on_device=True)
        resumed.prepare_run_dir()
        assert resumed.resume(), "no checkpoint to resume"
        after = [resumed.train_step(*entries)["loss"] for entries in continued]
        result.update(
            checkpoint_step=step,
            resumed_step=resumed.step - 3,
            losses_continued=before,
            losses_resumed=after,
            resume_bit_equal=before == after,
            resume_max_relative_difference=max(abs(a - b) / abs(a) for a, b in zip(before, after)),
        )
        del trainer, resumed, batches, continued, features
        return result

    def compile_row(self) -> dict:
        """train.compile (inductor) on the ViT-L batch-24 row: 20 steps, each with a new mask sample (so the
        context lengths vary): compile seconds, graphs, recompiles and the step time once compiled."""
        import torch._dynamo
        from torch._dynamo.utils import counters, get_compilation_metrics

        torch._dynamo.reset()
        counters.clear()
        cfg = self.config("vjepa/vitl16", "train.compile=true", f"train.compile_backend={self.sizes.compile_backend}")
        trainer = quiet_trainer(cfg, self.device, build_on_device=True)
        video = fixed_batch(cfg, self.device)[0]
        times, lengths, events = [], [], []
        for i in range(self.sizes.compile_steps):
            _, masks, length = fixed_batch(cfg, self.device, seed=i)
            sync(self.device)
            start = time.perf_counter()
            trainer.train_step(video, masks)
            sync(self.device)
            times.append(time.perf_counter() - start)
            lengths.append(length)
            events.append(len(get_compilation_metrics()))
        after = times[len(times) // 2 :]
        metrics = get_compilation_metrics()
        seconds = [getattr(m, "entire_frame_compile_time_s", None) for m in metrics]
        return {
            "backend": cfg.train.compile_backend,
            "steps": len(times),
            "first_step_s": times[0],
            "step_times_s": times,
            "step_s_after": statistics.median(after),
            "clips_per_s_after": cfg.train.batch_size / statistics.median(after),
            "context_lengths": [[c for c, _ in x] for x in lengths],
            "compilations_after_each_step": events,
            "recompiles_after_first_step": events[-1] - events[0],
            "unique_graphs": counters["stats"]["unique_graphs"],
            "compile_seconds_dynamo": sum(x for x in seconds if x) if any(seconds) else None,
        }


SUMMARY_KEYS = (
    "clips_per_s",
    "step_s",
    "mfu_vs_datasheet_bf16_peak",
    "mfu_vs_same_run_matmul_peak",
    "max_memory_allocated",
    "estimate_over_allocated",
    "error",
    "skipped",
    "within_bf16_tolerance",
    "clips_per_s_steady",
    "data_wait_fraction_steady",
    "resume_bit_equal",
    "resume_max_relative_difference",
    "rankme_s",
    "first_step_s",
    "step_s_after",
    "recompiles_after_first_step",
    "seconds",
)


def mask_lengths_of(cfg) -> list[tuple[int, int]]:
    """The mask lengths of a row's fixed batch (`fixed_batch`), without building its clips."""
    from videojepa.masks import MaskCollator, build_mask_generators

    masks = MaskCollator(build_mask_generators(cfg), seed=0).sample(cfg.train.batch_size, seed=0)
    return [(m.context.shape[1], m.target.shape[1]) for m in masks]


class count_host_reads:
    """Counts host reads of tensors made by videojepa's own code (tensor.item(), float(tensor), ...), the
    stand-in tests/test_cuda_paths.py uses; a context manager."""

    NAMES = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__", "__format__")

    def __init__(self):
        import videojepa

        self.package = str(Path(videojepa.__file__).parent)
        self.calls: dict[str, int] = {}
        self.saved = {}

    def __enter__(self):
        for name in self.NAMES:
            original = self.saved[name] = getattr(torch.Tensor, name)
            setattr(torch.Tensor, name, self.wrap(name, original))
        return self

    def __exit__(self, *exc):
        for name, original in self.saved.items():
            setattr(torch.Tensor, name, original)

    def wrap(self, name, original):
        def read(tensor, *args, **kwargs):
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(self.package):
                key = f"{name} at {Path(caller.f_code.co_filename).name}:{caller.f_lineno}"
                self.calls[key] = self.calls.get(key, 0) + 1
            return original(tensor, *args, **kwargs)

        return read


def driver_version() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except OSError:
        return "unknown (no nvidia-smi)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out")
    parser.add_argument("--work", help="scratch folder for runs and videos (default: a temporary one, deleted after)")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: every row, the same JSON")
    parser.add_argument("--budget-s", type=float, default=None, help="skip rows that would end after this")
    parser.add_argument("--only", type=lambda s: s.split(","), help="comma-separated row names (a second try)")
    parser.add_argument("--card-peak", type=float, help="the card's dense bf16 FLOP/s (default: by its name)")
    parser.add_argument(
        "--plan", choices=sorted(PLAN_CARDS), help="print the rows and the time estimate for this card, run nothing"
    )
    args = parser.parse_args()
    args.budget_s = args.budget_s or (160.0 if args.dry_run else 380.0)
    if args.dry_run:  # tiny tensors: one thread is faster, and steadier on a shared CPU
        torch.set_num_threads(1)
    os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars in the log
    if args.plan:
        args.out = args.work = tempfile.mkdtemp(prefix="videojepa_gpu_plan_")
    check = Check(args)
    if args.plan:  # the rows and their estimate for a card, computed here on the CPU
        check.device, check.datasheet = torch.device("cpu"), PLAN_CARDS[args.plan][1]
        rows = check.model_rows()
        print(json.dumps(check.doc["largest_batch_by_estimate"]))
        check.estimate(rows)
        return
    import logging

    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)  # the trainer logs its own INFO lines; warnings of the rest still show
    logging.getLogger().addHandler(handler)
    try:
        check.preflight()
    except SystemExit as stop:  # the one line, also in the JSON that comes back
        check.doc["stopped"] = str(stop)
        check.write()
        raise
    check.measure_peak()
    rows = check.model_rows()
    check.estimate(rows)
    for index, (name, make) in enumerate(rows):
        check.row(name, lambda make=make, name=name, index=index: check.model_row(name, make, extras=index == 0))
    check.row("gpu_vs_cpu", check.gpu_vs_cpu)
    check.row("fit", check.fit)
    check.row("compile", check.compile_row, limit=max(60.0, args.budget_s - check.elapsed()))
    check.doc["finished"] = True
    check.write()
    if not args.work:
        import shutil

        shutil.rmtree(check.work, ignore_errors=True)
    check.say(f"done: {check.out / 'results.json'}")


if __name__ == "__main__":
    main()
