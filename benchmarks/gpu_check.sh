#!/usr/bin/env bash
# Every GPU figure BENCHMARKS.md needs, in one short run on one GPU (<= 7 minutes), from a bare image that has
# python3 with a CUDA torch and nothing else of ours. What it measures: benchmarks/gpu_check.py.
#
#   python3 benchmarks/wheels.py fetch --python 3.12   # first, where registries are reachable: wheels/cp312-linux_x86_64
#   bash benchmarks/gpu_check.sh                        # on the GPU machine, the wheel folder carried along
#   bash benchmarks/gpu_check.sh --dry-run              # here: tiny sizes on the CPU, the same rows and JSON
#
# Results go to $OUT (default ./gpu_check_out): results.json (rewritten after every row), check.log (all output),
# nvidia-smi.txt; three files, nothing else (scratch runs and videos live in a temporary folder).
# The project is not pip-installed (pip would try to satisfy `torch>=...` from the network): the wheels the
# interpreter lacks go into a temporary site, and the repository is put on PYTHONPATH.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=()
if [ "${1:-}" = "--dry-run" ]; then DRY=(--dry-run); shift; fi
OUT=${OUT:-gpu_check_out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee "$OUT/check.log") 2>&1
fail() { echo "gpu_check: STOPPED: $*"; exit 1; }

command -v "$PY" > /dev/null || fail "no $PY on PATH (set PYTHON=...)"
"$PY" -c "import torch" 2> /dev/null || fail "$PY cannot import torch"
TAG=$("$PY" benchmarks/wheels.py tag) || fail "$PY cannot run benchmarks/wheels.py"
WHEELS=wheels/$TAG
if [ ${#DRY[@]} -gt 0 ] && [ ! -f "$WHEELS/manifest.json" ]; then
  echo "gpu_check: fetching the wheels for $TAG into $WHEELS (as for the GPU image's Python)"
  "$PY" benchmarks/wheels.py fetch --dest "$WHEELS" || fail "pip download of the wheels for $TAG failed"
fi
[ -f "$WHEELS/manifest.json" ] \
  || fail "no wheels for $TAG in $WHEELS: run 'python3 benchmarks/wheels.py fetch --python ${TAG:2:1}.${TAG:3:2}' where the registries are reachable, and carry $WHEELS"
SITE=$(mktemp -d "${TMPDIR:-/tmp}/videojepa_site.XXXXXX")
trap 'rm -rf "$SITE"' EXIT
"$PY" benchmarks/wheels.py install --wheels "$WHEELS" --target "$SITE" || fail "installing the wheels of $WHEELS failed"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ ${#DRY[@]} -eq 0 ]; then
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || fail "nvidia-smi failed: no usable GPU driver ($(head -n 1 "$OUT/nvidia-smi.txt"))"
fi
# the check keeps to its own budget (390 s on a GPU, rows that would overrun are skipped); this is the backstop
timeout -k 10 420 "$PY" benchmarks/gpu_check.py "${DRY[@]}" --out "$OUT" "$@"
rc=$?
[ $rc -eq 124 ] && echo "gpu_check: the check ran past 420 s and was stopped; results.json holds every finished row"
exit $rc
