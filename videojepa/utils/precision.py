"""Precision and CPU kernel choices made by measurement on this machine, not by a table.

`precision: auto` (the default of training, probes and extraction) resolves to
- bf16 on CUDA (the tensor cores' dense rate; every CUDA card this project targets runs bf16);
- on a CPU, bf16 only where a short matmul probe in this process shows bf16 at least `BF16_MIN_SPEEDUP`
  times faster than fp32, else fp32. CPUs differ: an AMD EPYC with avx512_bf16 multiplies bf16 at ~2.5x
  its fp32 rate, an Intel Xeon VM that also reports avx512_bf16 at ~0.5x (BENCHMARKS.md).
Where the CPU computes in bf16, attention runs as the fused SDPA kernel or as the explicit bf16
matmul-softmax-matmul (`videojepa.models.blocks.attention`), whichever a second probe (forward + backward
at the models' head sizes) finds faster.

Both probes run once per machine and are cached in `$VIDEOJEPA_CACHE_DIR/cpu_choices.json` (default
`~/.cache/videojepa`), keyed by the CPU model, the torch version and the thread count; every choice is
logged with its measured ratio. A run records the resolved precision in its config.yaml, and resuming it
with `auto` keeps the recorded one (see `videojepa.train.precision`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from videojepa.utils.files import atomic_write_text

log = logging.getLogger("videojepa")

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BF16_MIN_SPEEDUP = 1.1  # bf16 costs accuracy: it must buy at least 10% over fp32 to be chosen
ATTENTION_KINDS = ("matmul", "sdpa")
# (tokens, in, out) of the linear layers of a ViT-S-sized block, and (batch, heads, tokens, head dim) of its
# attention: the encoder's (head dim 64) and the predictor's (head dim 32), forward + backward
MATMUL_SHAPES = ((1024, 384, 1536), (1024, 1536, 384))
ATTENTION_SHAPES = ((2, 6, 392, 64), (2, 12, 352, 32))

_choices: dict | None = None  # this process's choices, once read or measured
_attention_override: str | None = None


def cache_file() -> Path:
    return Path(os.environ.get("VIDEOJEPA_CACHE_DIR") or Path.home() / ".cache" / "videojepa") / "cpu_choices.json"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_key() -> str:
    return f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def best_seconds(fn: Callable[[], object], rounds: int = 3, reps: int = 2) -> float:
    """Best mean time of `reps` calls over `rounds` (contention on a shared machine only adds time)."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def probing():
    """The context of a probe, wherever it is first needed (possibly inside a training step): its own random
    generator (the global one is left as it was), gradients on, no autocast, no inference mode."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode(False))
    stack.enter_context(torch.enable_grad())
    stack.enter_context(torch.autocast("cpu", enabled=False))
    return stack


def matmul_seconds() -> dict[str, float]:
    """Seconds of fp32 and bf16 `torch.mm` over `MATMUL_SHAPES`, the two dtypes interleaved shape by shape."""
    total = {"fp32": 0.0, "bf16": 0.0}
    generator = torch.Generator().manual_seed(0)
    with probing():
        for m, k, n in MATMUL_SHAPES:
            for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
                a = torch.randn(m, k, generator=generator).to(dtype)
                b = torch.randn(k, n, generator=generator).to(dtype)
                total[name] += best_seconds(lambda: a @ b)
    return total


def attention_seconds() -> dict[str, float]:
    """Seconds of bf16 attention forward + backward over `ATTENTION_SHAPES`: fused SDPA against the explicit
    matmul-softmax-matmul, interleaved."""
    import torch.nn.functional as F

    def explicit(q, k, v):
        return ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1) @ v

    total = {"sdpa": 0.0, "matmul": 0.0}
    generator = torch.Generator().manual_seed(0)
    with probing():
        for shape in ATTENTION_SHAPES:
            q, k, v = (torch.randn(*shape, generator=generator).bfloat16().requires_grad_() for _ in range(3))
            for name, fn in (("sdpa", F.scaled_dot_product_attention), ("matmul", explicit)):
                total[name] += best_seconds(lambda: fn(q, k, v).sum().backward(), reps=1)
    return total


def choose_precision(seconds: dict[str, float]) -> str:
    return "bf16" if seconds["fp32"] >= BF16_MIN_SPEEDUP * seconds["bf16"] else "fp32"


def choose_attention(seconds: dict[str, float]) -> str:
    return "sdpa" if seconds["sdpa"] <= seconds["matmul"] else "matmul"


def _read_cache() -> dict:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, entry: dict) -> None:
    try:
        cache = _read_cache()
        cache[key] = entry
        atomic_write_text(cache_file(), json.dumps(cache, indent=2))
    except OSError as err:  # a read-only home: the choice holds for this process only
        log.warning("could not cache the CPU precision choice in %s: %s", cache_file(), err)


def cpu_choices(measure: bool = True) -> dict:
    """{"precision": fp32|bf16, "attention": matmul|sdpa, ...} for this machine: cached, or measured now.

    With `measure=False`, None is returned instead of probing (e.g. while torch.compile traces)."""
    global _choices
    if _choices is not None:
        return _choices
    key = machine_key()
    entry = _read_cache().get(key)
    if entry is None or entry.get("precision") not in ("fp32", "bf16") or entry.get("attention") not in ATTENTION_KINDS:
        if not measure:
            return None
        matmul = matmul_seconds()
        attention = attention_seconds()
        entry = {
            "precision": choose_precision(matmul),
            "attention": choose_attention(attention),
            "bf16_over_fp32_speed": matmul["fp32"] / matmul["bf16"],
            "sdpa_over_matmul_attention_speed": attention["matmul"] / attention["sdpa"],
            "matmul_seconds": matmul,
            "attention_seconds": attention,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        _write_cache(key, entry)
        how = "measured now"
    else:
        how = f"measured earlier, cached in {cache_file()}"
    log.info(
        "CPU choices for %s: precision auto = %s (bf16 matmul %.2fx the fp32 speed; bf16 needs %.1fx), bf16 "
        "attention = %s (fused SDPA %.2fx the explicit matmul speed); %s",
        key,
        entry["precision"],
        entry["bf16_over_fp32_speed"],
        BF16_MIN_SPEEDUP,
        entry["attention"],
        entry["sdpa_over_matmul_attention_speed"],
        how,
    )
    _choices = {**entry, "machine": key}
    return _choices


def forget_choices() -> None:
    """Drop this process's choices (the next use reads the cache again); for tests and benchmarks."""
    global _choices
    _choices = None


def resolve_precision(requested: str, device: torch.device | str) -> str:
    """`auto` -> bf16 on CUDA, the measured choice on a CPU; any other precision as it is."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested != "auto":
        return requested
    if torch.device(device).type == "cuda":
        return "bf16"
    if torch.device(device).type != "cpu":
        return "fp32"
    return cpu_choices()["precision"]


def set_cpu_attention(kind: str | None) -> None:
    """Force the CPU bf16 attention kernel (`matmul` or `sdpa`) for this process; None: the measured choice."""
    global _attention_override
    if kind not in (None, *ATTENTION_KINDS):
        raise ValueError(f"CPU attention must be one of {', '.join(ATTENTION_KINDS)}, got {kind!r}")
    _attention_override = kind


def cpu_attention() -> str:
    """The bf16 attention kernel for CPU tensors: forced, or measured (probed on first use, then cached)."""
    if _attention_override is not None:
        return _attention_override
    if _choices is not None:
        return _choices["attention"]
    if torch.compiler.is_compiling():  # no probe inside a traced graph: the cached choice or the explicit one
        choices = cpu_choices(measure=False)
        return choices["attention"] if choices else "matmul"
    return cpu_choices()["attention"]
