"""Training-step throughput and MFU per method (JSON on stdout, or --out FILE).

For each method and precision: steps/s, clips/s, achieved model FLOP/s by the SALT paper's
6*N*D / 2*N*D rule and with attention (both counted with the EXACT context/target lengths of the
timed batch), and MFU = achieved / the matrix-multiply peak measured in the same run and dtype; on CUDA
also against the card's dense bf16 peak from its datasheet (`--card-peak` overrides it) and the peak
memory allocated. Data loading is excluded (a fixed batch of random clips): this measures the model step.

    python benchmarks/bench_train.py                       # reference config (ViT-S, 16x112x112, batch 4)
    python benchmarks/bench_train.py --config tiny --methods vjepa --precisions bf16
    python benchmarks/bench_train.py --methods vjepa --precisions bf16 --profile   # + the ops' times, on stderr
    python benchmarks/bench_train.py --device cuda --config vitl224 --methods vjepa --precisions bf16 --batch 32 --ac
    torchrun --nproc_per_node 1 benchmarks/bench_train.py --device cuda --config vitl224 --parallel fsdp2 ...
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from videojepa.config import load_config
from videojepa.masks import MaskCollator, MaskIndices, build_mask_generators
from videojepa.methods.accounting import step_components
from videojepa.train.distributed import DistInfo, init_distributed
from videojepa.train.trainer import Trainer

CONFIGS = {
    # the reference: ViT-S, 16x112x112, tubelet 2, patch 16, batch 4, predictor 12 x 384; every config runs
    # the plain method step (no feature_reg penalty, see `bench`)
    "reference": [
        "model.name=vit_small",
        "model.patch_size=16",
        "data.crop_size=112",
        "data.frames_per_clip=16",
        "train.batch_size=4",
        "predictor.depth=12",
        "predictor.embed_dim=384",
        "predictor.num_heads=12",
    ],
    "tiny": [
        "model.name=vit_micro",
        "model.patch_size=8",
        "data.crop_size=64",
        "data.frames_per_clip=16",
        "train.batch_size=8",
        "predictor.depth=4",
        "predictor.embed_dim=96",
        "predictor.num_heads=4",
    ],
    # the papers' ViT-L/16 at 16x224x224 (1568 tokens), predictor 12 x 384, SALT's multi-block masks
    "vitl224": [
        "model.name=vit_large",
        "model.patch_size=16",
        "data.crop_size=224",
        "data.frames_per_clip=16",
        "train.batch_size=24",
        "predictor.depth=12",
        "predictor.embed_dim=384",
        "predictor.num_heads=12",
        "model.pos_embed=rope",
    ],
    "vitg224": [
        "model.name=vit_giant",
        "model.patch_size=16",
        "data.crop_size=224",
        "data.frames_per_clip=16",
        "train.batch_size=8",
        "predictor.depth=12",
        "predictor.embed_dim=384",
        "predictor.num_heads=12",
        "model.pos_embed=rope",
    ],
}
CPU = torch.device("cpu")
# Dense bf16 tensor-core peaks from NVIDIA's datasheets (FLOP/s, no sparsity), matched on the device name.
CARD_BF16_PEAK = {
    "H200": 989e12,
    "H100 SXM": 989e12,
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10": 125e12,
    "RTX 4090": 165e12,
}
PRESETS = {
    "vjepa": "demo/vjepa",
    "salt_teacher": "demo/salt_teacher",
    "salt_student": "demo/salt_student",
    "videomae": "demo/videomae",
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, device: torch.device = CPU, windows: int = 4, window_s: float = 0.25) -> float:
    """Best FLOP/s of torch.mm over a few shapes typical of these models, best of several short windows
    per shape (a shared CPU's slow window would otherwise understate the peak and inflate MFU)."""
    shapes = ((2048, 2048, 2048), (4096, 384, 1536), (4096, 1536, 384), (3136, 768, 768))
    if device.type == "cuda":  # a GPU needs larger products to reach its peak
        shapes = ((8192, 8192, 8192), (37632, 1024, 4096), (37632, 4096, 1024), (16384, 1024, 1024))
    best = 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k, dtype=dtype, device=device), torch.randn(k, n, dtype=dtype, device=device)
        for _ in range(2):
            a @ b
        for _ in range(windows):
            synchronize(device)
            reps, start = 0, time.perf_counter()
            while time.perf_counter() - start < window_s:
                a @ b
                reps += 1
            synchronize(device)
            best = max(best, 2 * m * k * n * reps / (time.perf_counter() - start))
    return best


def card_peak(device: torch.device) -> tuple[str, float | None]:
    if device.type != "cuda":
        return platform.processor() or "cpu", None
    name = torch.cuda.get_device_name(device)
    return name, next((peak for key, peak in CARD_BF16_PEAK.items() if key in name), None)


def bench(
    method: str,
    config: str,
    precision: str,
    steps: int,
    warmup: int,
    profile: bool = False,
    device: torch.device = CPU,
    extra: tuple[str, ...] = (),
) -> dict:
    overrides = CONFIGS[config] + [
        f"train.precision={precision}",
        "run.dir=/tmp/videojepa-bench",
        "train.grad_clip=1.0",
        # the plain methods, as the papers and the official code train them: the demo presets add a
        # variance-covariance penalty on the context features, which the official comparison must not count
        "method.feature_reg=0.0",
    ]
    if method == "salt_student":  # a same-size random frozen teacher: the cost is what matters here
        overrides += ["method.teacher.checkpoint=null", f"method.teacher.model={CONFIGS[config][0].split('=')[1]}"]
    cfg = load_config(PRESETS[method], overrides + list(extra))
    torch.manual_seed(0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Trainer(
            cfg,
            dist_info=init_distributed() if torch.distributed.is_torchelastic_launched() else DistInfo(device=device),
        )
    device = trainer.device
    batch = cfg.train.batch_size
    video = torch.randn(batch, 3, cfg.data.frames_per_clip, cfg.data.crop_size, cfg.data.crop_size, device=device)
    masks = [
        MaskIndices(m.context.to(device), m.target.to(device))
        for m in MaskCollator(build_mask_generators(cfg), seed=0).sample(batch, seed=0)
    ]
    lengths = [(m.context.shape[1], m.target.shape[1]) for m in masks]
    parts = step_components(cfg, lengths=lengths)
    flops = sum(c.flops for c in parts)
    flops_attn = flops + sum(c.attention_flops for c in parts)
    for _ in range(warmup):
        trainer.train_step(video, masks)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        trainer.train_step(video, masks)
        synchronize(device)
        times.append(time.perf_counter() - start)
    step_time = sorted(times)[len(times) // 2]  # median: robust to a stray slow step
    if profile:  # one more step under torch.profiler, after the timed ones so that it cannot slow them
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as profiler

        with profiler(activities=[ProfilerActivity.CPU]) as prof:
            trainer.train_step(video, masks)
        print(
            f"{method} {config} {precision}: one profiled step\n"
            + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15),
            file=sys.stderr,
        )
    peak_memory = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {
        "method": method,
        "config": config,
        "precision": precision,
        "batch_size": batch,
        "settings": list(extra),
        "parallel": cfg.train.parallel if trainer.sharded else "none",
        "peak_memory_bytes": peak_memory,
        "mask_lengths": lengths,
        "step_time_s": step_time,
        "steps_per_s": 1 / step_time,
        "clips_per_s": batch / step_time,
        "flops_per_step": flops,
        "flops_per_step_with_attention": flops_attn,
        "achieved_flops_per_s": flops / step_time,
        "achieved_flops_per_s_with_attention": flops_attn / step_time,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=list(CONFIGS), nargs="+", default=["reference"])
    parser.add_argument("--methods", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out")
    parser.add_argument("--profile", action="store_true", help="also profile one step per row (table on stderr)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch", type=int, help="clips per step (default: the config's)")
    parser.add_argument("--ac", action="store_true", help="activation checkpointing")
    parser.add_argument("--compile", action="store_true", help="train.compile=true (every block)")
    parser.add_argument(
        "--parallel",
        choices=["ddp", "fsdp2"],
        default="ddp",
        help="fsdp2 needs a torchrun launch (one process is enough)",
    )
    parser.add_argument("--card-peak", type=float, help="the card's dense bf16 FLOP/s (default: by its name)")
    args = parser.parse_args()
    device = torch.device(args.device)
    extra = tuple(
        f"train.{k}={v}"
        for k, v in (
            ("batch_size", args.batch),
            ("activation_checkpointing", args.ac),
            ("compile", args.compile),
            ("parallel", None if args.parallel == "ddp" else args.parallel),
        )
        if v not in (None, False)
    )
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    # the peak is measured before and after the steps and the higher one kept: MFU is never flattered by a
    # peak taken during a slow spell of the machine
    peaks_before = {p: matmul_peak(dtypes[p], device) for p in args.precisions}
    rows = []
    for config in args.config:
        for method in args.methods:
            for precision in args.precisions:
                rows.append(bench(method, config, precision, args.steps, args.warmup, args.profile, device, extra))
    peaks_after = {p: matmul_peak(dtypes[p], device) for p in args.precisions}
    peaks = {p: max(peaks_before[p], peaks_after[p]) for p in args.precisions}
    card, datasheet_peak = card_peak(device)
    datasheet_peak = args.card_peak or datasheet_peak
    for row in rows:
        peak = peaks[row["precision"]]
        row["matmul_peak_flops_per_s"] = peak
        row["mfu"] = row["achieved_flops_per_s"] / peak
        row["mfu_with_attention"] = row["achieved_flops_per_s_with_attention"] / peak
        if datasheet_peak and row["precision"] == "bf16":
            row["mfu_vs_datasheet"] = row["achieved_flops_per_s"] / datasheet_peak
            row["mfu_with_attention_vs_datasheet"] = row["achieved_flops_per_s_with_attention"] / datasheet_peak
        memory = f" peak {row['peak_memory_bytes'] / 2**30:.1f} GiB" if row["peak_memory_bytes"] else ""
        print(
            f"{row['config']:9} {row['method']:13} {row['precision']} {' '.join(row['settings'])}: "
            f"{row['step_time_s'] * 1e3:7.1f} ms/step {row['clips_per_s']:6.2f} clips/s  MFU {row['mfu']:.1%} "
            f"(with attention {row['mfu_with_attention']:.1%}){memory}",
            flush=True,
            file=sys.stderr,
        )
    doc = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "device": card,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "matmul_peak_flops_per_s": peaks,
        "matmul_peak_before_after": [peaks_before, peaks_after],
        "datasheet_bf16_peak_flops_per_s": datasheet_peak,
        "results": rows,
    }
    text = json.dumps(doc, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
