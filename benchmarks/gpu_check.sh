#!/usr/bin/env bash
# The GPU check: on a machine with one CUDA GPU, in under 5 minutes, from a checkout with its venv, offline.
#
#   1. the CUDA tests (pytest -m cuda; they skip with the reason on a machine without a GPU);
#   2. linear and conv pathway training on the device against its GEMM and conv rooflines
#      (benchmarks/bench_pathnet.py --device, 1 CPU thread, results also written as JSON);
#   3. one paper-profile fold on the synthetic EMO-DB with T read literally
#      (benchmarks/bench_fold.py: generated there, timed for up to FOLD_SECONDS, extrapolated).
#
# Usage: benchmarks/gpu_check.sh [--device cuda|cpu|auto] [--quick] [--out DIR]
#   --device cpu --quick   checks on a CPU machine that every piece starts (what the tests do)
# Environment: PYTHON (default .venv/bin/python of the checkout), FOLD_SECONDS (evolution budget, default 60).
# Each stage has its own time limit; a failed stage is reported and the next one still runs;
# the exit status is that of the first failed stage (0 when all passed).
set -u
cd "$(dirname "$0")/.."
DEVICE=cuda QUICK="" OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --quick) QUICK="--quick"; shift ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || { echo "gpu_check.sh: no Python at $PYTHON (make venv, or set PYTHON)" >&2; exit 2; }
SCRATCH="$(mktemp -d -t mtl-gpu-check-XXXXXX)"
OUT="${OUT:-$SCRATCH}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MTL_CACHE_DIR="$SCRATCH/cache" MTL_RESULTS_DIR="$SCRATCH/results"
export MTL_DATA_ROOT="$SCRATCH/no-data"  # synthetic corpora only: nothing to download, nothing real needed
STATUS=0

stage() {  # stage NAME SECONDS COMMAND...
  local name="$1" limit="$2"; shift 2
  echo; echo "== $name (limit ${limit} s; load average $(cut -d' ' -f1 /proc/loadavg))"
  local started=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "-- $name: exit $rc after $((SECONDS - started)) s"
  [ "$rc" -ne 0 ] && [ "$STATUS" -eq 0 ] && STATUS=$rc
  return 0
}

echo "mtl GPU check, device=$DEVICE ${QUICK:+(quick)}, logs in $OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'available', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

stage cuda-tests 60 "$PYTHON" -m pytest -q -m cuda -p no:cacheprovider tests/test_device.py
stage pathway-bench 80 "$PYTHON" benchmarks/bench_pathnet.py --device "$DEVICE" --threads 1 --repeats 3 \
  --output "$OUT/bench_pathnet.json" $QUICK
stage fold 150 "$PYTHON" benchmarks/bench_fold.py --device "$DEVICE" --threads 1 \
  --seconds "${FOLD_SECONDS:-60}" $QUICK
echo; echo "GPU check done (exit $STATUS); logs and bench_pathnet.json in $OUT"
exit $STATUS
