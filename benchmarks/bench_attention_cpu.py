"""CPU attention pieces at the reference training step's shapes (JSON on stdout).

    python benchmarks/bench_attention_cpu.py [--threads 2]

For each (batch, heads, tokens, head dim) of the ViT-S V-JEPA reference step (encoder on all 392 tokens,
predictor on 352, a context of 120): median milliseconds of the softmax over the scores in bf16 and in
fp32, and of a forward-only attention as `videojepa.models.blocks.attention` computes it in bf16 on CPU
(scaled q @ k^T, softmax, @ v) against torch's fused `scaled_dot_product_attention`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
import torch.nn.functional as F

from videojepa.models.blocks import attention

SHAPES = ((4, 6, 392, 64), (4, 12, 352, 32), (4, 6, 120, 64))


def median_ms(fn, reps: int = 20) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[reps // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    with torch.no_grad():
        for shape in SHAPES:
            q, k, v = (torch.randn(*shape, dtype=torch.bfloat16) for _ in range(3))
            scores = q @ k.transpose(-2, -1)
            scores_fp32 = scores.float()
            rows.append(
                {
                    "shape": list(shape),
                    "softmax_bf16_ms": median_ms(lambda: scores.softmax(-1)),
                    "softmax_fp32_ms": median_ms(lambda: scores_fp32.softmax(-1)),
                    "attention_matmul_bf16_ms": median_ms(lambda: attention(q, k, v)),
                    "attention_sdpa_bf16_ms": median_ms(lambda: F.scaled_dot_product_attention(q, k, v)),
                }
            )
    print(
        json.dumps(
            {"threads": args.threads, "torch": torch.__version__, "machine": platform.machine(), "results": rows},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
