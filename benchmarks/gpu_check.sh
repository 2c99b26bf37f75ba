#!/usr/bin/env bash
# One GPU, about 8 minutes: the figures BENCHMARKS.md reports for a card. JSON files go to ${OUT:-gpu_check}/.
#   bash benchmarks/gpu_check.sh                 # needs torch with CUDA and this package installed
# 1. matmul peak (inside every bench_train run) and V-JEPA ViT-L 16x224x224 three ways: B24, B32 + activation
#    checkpointing, B24 compiled; 2. the SALT student of a bf16 ViT-L teacher; 3. ViT-g at B8 with AC off/on,
#    peak memory beside the `videojepa flops --memory` estimate; 4. FSDP2 on one GPU (torchrun, 1 process) vs
#    plain; 5. decode throughput of this box's cores (bench_data.py).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check}
PY=${PY:-python}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia-smi.csv" 2>&1
bench() {  # name, then bench_train arguments
  local name=$1; shift
  timeout 240 "$@" --steps 10 --warmup 3 --precisions bf16 --out "$OUT/$name.json" > /dev/null 2> "$OUT/$name.log" \
    || echo "$name failed (see $OUT/$name.log)"
  tail -n 1 "$OUT/$name.log"
}
TRAIN="$PY benchmarks/bench_train.py --device cuda"
bench vitl_b24          $TRAIN --config vitl224 --methods vjepa --batch 24
bench vitl_b32_ac       $TRAIN --config vitl224 --methods vjepa --batch 32 --ac
bench vitl_b24_compile  $TRAIN --config vitl224 --methods vjepa --batch 24 --compile
bench salt_student_vitl $TRAIN --config vitl224 --methods salt_student --batch 24
bench vitg_b8           $TRAIN --config vitg224 --methods vjepa --batch 8
bench vitg_b8_ac        $TRAIN --config vitg224 --methods vjepa --batch 8 --ac
bench vitl_b24_fsdp2    $PY -m torch.distributed.run --standalone --nproc_per_node 1 benchmarks/bench_train.py \
                        --device cuda --config vitl224 --methods vjepa --batch 24 --parallel fsdp2
# the memory estimate of the two ViT-g runs (one process: no DDP buckets)
$PY - "$OUT" <<'PYEOF' > "$OUT/vitg_memory.json"
import json, sys
from videojepa.config import load_config
from videojepa.memory import stage_memory
sys.path.insert(0, "benchmarks")
from bench_train import CONFIGS, PRESETS
out = sys.argv[1]
rows = []
for name, key in (("vitg_b8", "no_checkpointing"), ("vitg_b8_ac", "checkpointing")):
    cfg = load_config(PRESETS["vjepa"], CONFIGS["vitg224"] + ["train.batch_size=8", "train.precision=bf16",
                                                            f"train.activation_checkpointing={key == 'checkpointing'}"])
    estimate = stage_memory(cfg, 1)["ddp"][key]
    try:
        measured = json.load(open(f"{out}/{name}.json"))["results"][0]["peak_memory_bytes"]
    except (OSError, KeyError, IndexError, ValueError):
        measured = None
    total = estimate["total"] - estimate.get("ddp_gradient_buckets", 0)
    rows.append({"run": name, "estimate_bytes": total, "measured_peak_bytes": measured,
                 "estimate_over_measured": total / measured if measured else None})
print(json.dumps(rows, indent=2))
PYEOF
cat "$OUT/vitg_memory.json"
cores=$(nproc)
timeout 150 $PY benchmarks/bench_data.py --sizes 224 --workers 1 $((cores / 2)) $cores --clips 256 --out "$OUT/data.json" \
  > /dev/null 2> "$OUT/data.log" || echo "bench_data failed (see $OUT/data.log)"
echo "results in $OUT/"
