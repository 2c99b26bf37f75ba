"""Encoder inference throughput: videojepa's ViT against Hugging Face `transformers`' VJEPA2Model.

    python benchmarks/bench_extract.py                        # JSON to stdout
    python benchmarks/bench_extract.py --out bench.json       # and to a file

Both encoders are built from the same ViT-S configuration (width 384, 12 blocks, 6 heads, patch 16,
tubelet 2, 3D RoPE) with random weights, offline (no download): 16 frames of 112x112 = 392 tokens per
clip, batch 8. Feature extraction runs exactly this forward (`videojepa.eval.features.encode`).
Precisions: fp32; bf16 = torch.autocast(bfloat16) around fp32 weights (both models); bf16-weights =
both models converted to bfloat16 (HF's `torch_dtype=torch.bfloat16` way) and bf16 input.
For each precision the two models run in alternating rounds in one process (with a matmul-peak probe
in every round). On a CPU shared with other jobs, contention only ever adds time, so clips/s come
from the best round (`clips_per_s`), with the median round beside it; `ratio` = videojepa /
transformers from the best rounds (> 1: videojepa is faster), `ratio_median` from the medians.
Needs the benchmark extra: pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time

import torch

CONFIG = dict(embed_dim=384, depth=12, num_heads=6, patch_size=16, tubelet_size=2, frames=16, crop=112)


def build_ours(device):
    from videojepa.models import create_model

    c = CONFIG
    return (
        create_model("vit_small", patch_size=c["patch_size"], tubelet_size=c["tubelet_size"], pos_embed="rope")
        .to(device)
        .eval()
    )


def build_hf(device):
    from transformers import VJEPA2Config, VJEPA2Model

    c = CONFIG
    config = VJEPA2Config(
        hidden_size=c["embed_dim"],
        num_hidden_layers=c["depth"],
        num_attention_heads=c["num_heads"],
        patch_size=c["patch_size"],
        tubelet_size=c["tubelet_size"],
        frames_per_clip=c["frames"],
        crop_size=c["crop"],
        mlp_ratio=4.0,
        pred_num_hidden_layers=1,
        pred_hidden_size=64,
        pred_num_attention_heads=2,
        attn_implementation="sdpa",
    )
    return VJEPA2Model(config).to(device).eval()


def forward_ours(model, clips):  # (B, C, T, H, W)
    return model(clips)


def forward_hf(model, clips):  # HF takes (B, T, C, H, W)
    return model.get_vision_features(clips.transpose(1, 2))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_call(fn, device, repeats: int) -> float:
    """Seconds per call, mean over `repeats` calls."""
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def matmul_peak(device, dtype, n: int = 2048) -> float:
    """Achieved GFLOP/s of an n x n matmul (best of three)."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = min(time_call(lambda: a @ b, device, 1) for _ in range(3))
    return 2 * n**3 / best / 1e9


def encoder_flops(tokens: int) -> float:
    """Forward FLOPs per clip: 2 * params * tokens for the blocks, plus the attention matmuls."""
    d, L = CONFIG["embed_dim"], CONFIG["depth"]
    block_params = 12 * d * d  # qkv 3d^2 + proj d^2 + mlp 8d^2
    return L * (2 * block_params * tokens + 4 * tokens * tokens * d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7, help="alternating timing rounds per model and precision")
    parser.add_argument("--repeats", type=int, default=1, help="forward calls per round")
    parser.add_argument("--precisions", default="fp32,bf16,bf16-weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    ours, hf = build_ours(device), build_hf(device)
    c = CONFIG
    clips = torch.randn(args.batch, 3, c["frames"], c["crop"], c["crop"], device=device)
    tokens = (c["frames"] // c["tubelet_size"]) * (c["crop"] // c["patch_size"]) ** 2
    with torch.no_grad():
        assert forward_ours(ours, clips).shape == forward_hf(hf, clips).shape == (args.batch, tokens, c["embed_dim"])
    result = {
        "benchmark": "encoder inference, videojepa vs transformers VJEPA2Model",
        "config": {**c, "tokens": tokens, "batch": args.batch},
        "params": {
            "videojepa": sum(p.numel() for p in ours.parameters()),
            "transformers_encoder": sum(p.numel() for p in hf.encoder.parameters()),
        },
        "machine": {
            "device": str(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
        },
        "results": {},
    }
    try:
        import transformers

        result["machine"]["transformers"] = transformers.__version__
    except ImportError:
        pass
    flops = encoder_flops(tokens) * args.batch
    for precision in args.precisions.split(","):
        pure = precision == "bf16-weights"
        dtype = torch.float32 if precision == "fp32" else torch.bfloat16
        models = {
            "videojepa": copy.deepcopy(ours).to(dtype) if pure else ours,
            "transformers": copy.deepcopy(hf).to(dtype) if pure else hf,
        }
        x = clips.to(dtype) if pure else clips
        calls = {
            "videojepa": lambda: forward_ours(models["videojepa"], x),
            "transformers": lambda: forward_hf(models["transformers"], x),
        }
        autocast = torch.autocast(device.type, dtype=dtype, enabled=precision == "bf16")
        times, peaks = {name: [] for name in calls}, []
        with torch.no_grad(), autocast:
            for fn in calls.values():  # warm-up
                fn()
            for _ in range(args.rounds):
                peaks.append(matmul_peak(device, dtype))
                for name, fn in calls.items():
                    times[name].append(time_call(fn, device, args.repeats))
        peak = max(peaks)
        row = {"matmul_peak_gflops": round(peak, 1), "matmul_peak_gflops_median": round(statistics.median(peaks), 1)}
        for name, ts in times.items():
            best, median = min(ts), statistics.median(ts)
            row[name] = {
                "clips_per_s": round(args.batch / best, 2),
                "clips_per_s_median": round(args.batch / median, 2),
                "ms_per_batch": round(1000 * best, 1),
                "gflops": round(flops / best / 1e9, 1),
                "fraction_of_peak": round(flops / best / 1e9 / peak, 3),
            }
        row["ratio"] = round(row["videojepa"]["clips_per_s"] / row["transformers"]["clips_per_s"], 3)
        row["ratio_median"] = round(
            row["videojepa"]["clips_per_s_median"] / row["transformers"]["clips_per_s_median"], 3
        )
        result["results"][precision] = row
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
