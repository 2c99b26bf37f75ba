"""Streamed probe training against the cached path and against Hugging Face's VJEPA2ForVideoClassification forward.

    python benchmarks/bench_probe_streaming.py                     # JSON to stdout
    python benchmarks/bench_probe_streaming.py --out streaming.json

One random-weight classifier, built offline as a Hugging Face `VJEPA2ForVideoClassification` (ViT-S: width 384,
12 blocks, 6 heads, patch 16, tubelet 2, RoPE; its attentive pooler with 3 self-attention blocks, V-JEPA 2's
4-block probe; 174 classes) and converted with `videojepa convert --from hf`, so both sides hold the same
weights. Clips of 16 x 112 x 112 (392 tokens), batch 8. Timed per batch, clips/s:
  - streamed:   what `videojepa probe` does per training batch with features.cache=false: the frozen encoder's
                forward (`eval.features.encode`) then one optimiser step of a probe grid of --cells attentive
                probes shaped like the pooler (`eval.grid.ProbeGrid`: prepare + step; --blocks 0: V-JEPA's
                probe, whose cells share their passes over the tokens);
  - cached:     the grid step alone, on features read from memory (the cached path's per-batch cost);
  - ours_fwd:   our converted classifier's forward (`videojepa evaluate`'s per-batch work);
  - hf_fwd:     transformers' forward of the same classifier (no gradient).
Precisions: fp32, and bf16 (the encoders' weights in bfloat16, as probe.precision=bf16 makes ours and
`torch_dtype=bfloat16` makes transformers'; the probes train in fp32). Every round runs each case once, in
turn, beside a 2048^3 matmul in fp32 and bf16 (the machine's peaks; their ratio says whether bf16 pays on this
CPU); on a shared CPU contention only adds time, so the best round is reported with the median beside it.
The CPU model (lscpu), core count and load average (before and after) are recorded. Needs transformers
(pip install -e ".[bench]").
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

FRAMES, CROP, BATCH, CLASSES = 16, 112, 8, 174


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor()


def hf_classifier(folder: Path):
    import transformers

    config = transformers.VJEPA2Config(
        crop_size=CROP,
        frames_per_clip=FRAMES,
        patch_size=16,
        tubelet_size=2,
        hidden_size=384,
        num_attention_heads=6,
        num_hidden_layers=12,
        mlp_ratio=4.0,
        pred_hidden_size=64,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=1,
        num_pooler_layers=3,
        num_labels=CLASSES,
    )
    torch.manual_seed(0)
    model = transformers.VJEPA2ForVideoClassification(config).eval()
    model.save_pretrained(folder)
    return model


def best_and_median(times: list[float]) -> tuple[float, float]:
    return BATCH / min(times), BATCH / statistics.median(times)


def matmul_peak(dtype: torch.dtype, n: int = 2048) -> float:
    """GFLOP/s of one n^3 matmul (best of 3)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(3))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(precision: str, rounds: int, cells: int, blocks: int | None, tmp: Path) -> dict:
    from videojepa.classifiers import load_classifier
    from videojepa.eval.features import encode, prepare_encoder
    from videojepa.eval.grid import ProbeGrid, grid_cells
    from videojepa.eval.probes import AttentiveProbe
    from videojepa.interop import convert

    hf = hf_classifier(tmp / f"hf-{precision}")
    convert("hf", tmp / f"hf-{precision}", tmp / f"ours-{precision}")
    ours = load_classifier(tmp / f"ours-{precision}")
    encoder = prepare_encoder(copy.deepcopy(ours.encoder), precision)  # what `videojepa probe` runs
    if precision == "bf16":
        hf, ours = hf.to(torch.bfloat16), ours.to(torch.bfloat16)
    arch = {k: v for k, v in ours.head.arch.items() if k not in ("dim", "num_classes")}
    if blocks is not None:  # another probe shape (0: V-JEPA's, with its output projection)
        arch.update(self_attn_blocks=blocks, out_proj=blocks == 0)
    grid = ProbeGrid(
        lambda: AttentiveProbe(384, CLASSES, **{**arch, "norm_eps": 1e-6}),
        grid_cells([10.0 ** -(3 + i / 2) for i in range(cells)], [0.01]),
        0,
        10_000,
    )
    g = torch.Generator().manual_seed(0)
    clips = torch.randn(BATCH, 3, FRAMES, CROP, CROP, generator=g)
    labels = torch.randint(0, CLASSES, (BATCH,), generator=g)
    features = grid.prepare(encode(encoder, clips, (-1,), precision))  # the cached path's batch, in memory
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    hf_video = clips.transpose(1, 2).to(dtype)  # transformers takes (B, T, C, H, W)

    def streamed():
        tokens = encode(encoder, clips, (-1,), precision)
        grid.step(grid.prepare(tokens), labels)

    cases = {
        "streamed": streamed,
        "cached": lambda: grid.step(features, labels),
        "ours_fwd": lambda: ours(clips.to(dtype)),
        "hf_fwd": lambda: hf(pixel_values_videos=hf_video).logits,
    }
    times = {name: [] for name in cases}
    peaks = {"fp32": [], "bf16": []}
    with torch.no_grad():
        for fn in (cases["ours_fwd"], cases["hf_fwd"]):
            fn()  # warm-up
    cases["streamed"](), cases["cached"]()
    for _ in range(rounds):
        peaks["fp32"].append(matmul_peak(torch.float32))
        peaks["bf16"].append(matmul_peak(torch.bfloat16))
        for name, fn in cases.items():
            if name.endswith("fwd"):
                with torch.no_grad():
                    times[name].append(_timed(fn))
            else:
                times[name].append(_timed(fn))
    result = {"precision": precision, "cells": cells, "probe_blocks": arch["self_attn_blocks"]}
    for name, t in times.items():
        best, median = best_and_median(t)
        result[name] = {"clips_per_s": round(best, 3), "clips_per_s_median": round(median, 3)}
    rate = {name: result[name]["clips_per_s"] for name in cases}
    result["streamed_vs_cached"] = round(rate["streamed"] / rate["cached"], 3)
    result["streamed_vs_hf_fwd"] = round(rate["streamed"] / rate["hf_fwd"], 3)
    result["ours_fwd_vs_hf_fwd"] = round(rate["ours_fwd"] / rate["hf_fwd"], 3)
    result["matmul_peak_gflops"] = {k: round(max(v), 1) for k, v in peaks.items()}
    result["bf16_to_fp32_peak"] = round(max(peaks["bf16"]) / max(peaks["fp32"]), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cells", type=int, default=2, help="probes in the grid (default 2)")
    parser.add_argument(
        "--blocks", type=int, help="self-attention blocks of the trained probes (default: the pooler's 3; 0: V-JEPA's)"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    report = {
        "machine": {
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "clip": {"frames": FRAMES, "crop": CROP, "tokens": (FRAMES // 2) * (CROP // 16) ** 2, "batch": BATCH},
    }
    with tempfile.TemporaryDirectory() as tmp:
        report["results"] = [measure(p, args.rounds, args.cells, args.blocks, Path(tmp)) for p in args.precisions]
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
