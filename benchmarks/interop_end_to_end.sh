#!/usr/bin/env bash
# A converted Hugging Face V-JEPA 2 (tiny, random weights, built offline) through convert, extract and probe,
# with the wall time of each command (BENCHMARKS.md: checkpoint interop).   OUT=dir bash benchmarks/interop_end_to_end.sh
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
PY=${PY:-.venv/bin/python}
OUT=${OUT:-/tmp/videojepa-e2e}
rm -rf "$OUT/hf" "$OUT/ours" "$OUT"/feats* "$OUT/probe"
mkdir -p "$OUT"
$PY - "$OUT/hf" <<'PYEOF'
import sys, torch, transformers
cfg = transformers.VJEPA2Config(crop_size=32, frames_per_clip=8, patch_size=8, tubelet_size=2, hidden_size=64,
                                num_attention_heads=4, num_hidden_layers=4, mlp_ratio=4.0, pred_hidden_size=48,
                                pred_num_attention_heads=4, pred_num_hidden_layers=2, pred_num_mask_tokens=2)
torch.manual_seed(0)
m = transformers.VJEPA2Model(cfg)
with torch.no_grad():
    for n, p in m.named_parameters():
        if p.ndim == 1 and "norm" not in n:
            p.normal_(0, 0.02)
m.save_pretrained(sys.argv[1])
PYEOF
[ -d "$OUT/synth" ] || $PY -m videojepa data synth --out "$OUT/synth" --num-videos 240 --frames 16 --size 32 --seed 0 > /dev/null
/usr/bin/time -f "convert %e s" $PY -m videojepa convert --from hf "$OUT/hf" "$OUT/ours"
/usr/bin/time -f "extract %e s" $PY -m videojepa extract --checkpoint "$OUT/ours" --input "$OUT/synth/motion/val.csv" \
  --out "$OUT/feats.npy" --no-progress --workers 0
/usr/bin/time -f "probe %e s" $PY -m videojepa probe demo/probe probe.checkpoint="$OUT/ours" run.dir="$OUT/probe" \
  data.crop_size=32 data.frames_per_clip=8 data.frame_step=2 data.num_workers=0 optim.epochs=5 probe.heads=4 tasks=[] \
  data.train="$OUT/synth/motion/train.csv" data.val="$OUT/synth/motion/val.csv" 2>&1 | tail -4
