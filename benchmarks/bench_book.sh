#!/usr/bin/env bash
# Wall time of `make book` from a fresh clone: per notebook, the HTML build, and in all.
#
# Clones the repository (default: the committed HEAD of the checkout holding this script) into a
# scratch folder, so nothing of this checkout is reused: no executed notebooks, no feature cache,
# no built book. Then runs `make book PROFILE=<profile>` there and prints the book's own timing
# table (each notebook's seconds, from book/executed/timings.csv, and the jupyter-book build),
# the wall time of `make book`, the core count and the load average before and after (a loaded
# machine gives longer times: read them beside the load).
#
# Usage: benchmarks/bench_book.sh [--repo PATH|URL] [--venv PATH] [--profile NAME] [--keep]
#   --venv PATH   reuse an installed environment (e.g. the checkout's .venv) instead of installing
#                 one in the clone (which needs the network); the clone's own package is put first
#                 on PYTHONPATH, and the environment is not modified
#   --keep        keep the clone (printed) instead of removing it
# MTL_DATA_ROOT is passed through as it is: unset, the book reads the synthetic corpora and the
# records committed for them (what CI does).
set -u
SELF_DIR="$(cd "$(dirname "$0")" && pwd)"
REPO="$(git -C "$SELF_DIR" rev-parse --show-toplevel 2>/dev/null || echo "$SELF_DIR/..")"
VENV="" PROFILE=default KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) REPO="$2"; shift 2 ;;
    --venv) VENV="$(cd "$2" && pwd)"; shift 2 ;;
    --profile) PROFILE="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "bench_book.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
if [ -n "$VENV" ] && [ ! -x "$VENV/bin/python" ]; then
  echo "bench_book.sh: $VENV/bin/python not found: --venv takes a virtual environment's folder" >&2; exit 2
fi
SCRATCH="$(mktemp -d -t mtl-bench-book-XXXXXX)"
CLONE="$SCRATCH/mtl"
[ -n "$KEEP" ] || trap 'rm -rf "$SCRATCH"' EXIT
git clone --quiet "$REPO" "$CLONE" || { echo "bench_book.sh: cannot clone $REPO" >&2; exit 1; }
echo "fresh clone of $REPO at $(git -C "$CLONE" rev-parse --short HEAD) in $CLONE"

MAKE_ARGS=(-C "$CLONE" book "PROFILE=$PROFILE")
if [ -n "$VENV" ]; then
  # The Makefile installs when its stamp is older than pyproject.toml: a stamp of our own, made now,
  # says the environment is ready, so `make` neither installs nor touches the shared environment.
  touch "$SCRATCH/installed.stamp"
  MAKE_ARGS+=("VENV=$VENV" "STAMP=$SCRATCH/installed.stamp")
  export PYTHONPATH="$CLONE${PYTHONPATH:+:$PYTHONPATH}"  # the clone's mtl, in this shell and the kernels
  echo "reusing the environment $VENV (the clone's package first on PYTHONPATH)"
else
  started=$SECONDS
  if ! make -C "$CLONE" venv >"$SCRATCH/venv.log" 2>&1; then
    trap - EXIT
    echo "bench_book.sh: install failed, see $SCRATCH/venv.log (kept)" >&2; exit 1
  fi
  echo "environment installed in $((SECONDS - started)) s (not counted below)"
fi
unset MTL_CACHE_DIR MTL_RESULTS_DIR  # the clone's own (empty) cache and results, as on a fresh machine

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
started=$SECONDS
make "${MAKE_ARGS[@]}" >"$SCRATCH/book.log" 2>&1
rc=$?
wall=$((SECONDS - started))
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "make book PROFILE=$PROFILE: exit $rc, ${wall} s wall ($((wall / 60)) min $((wall % 60)) s) on $(nproc) cores;" \
     "load average before $load_before, after $load_after"
TIMINGS="$CLONE/book/executed/timings.csv"
if [ -f "$TIMINGS" ]; then
  echo "per notebook (book/executed/timings.csv):"
  awk -F, 'NR > 1 { printf "  %-28s %-7s %8.1f s\n", $3, $4, $5; total += $5 }
           END { printf "  %-28s %-7s %8.1f s\n", "notebooks in all", "", total }' "$TIMINGS"
fi
grep -E "^jupyter-book build|^total" "$SCRATCH/book.log" | sed 's/^/  /'
if [ "$rc" -ne 0 ]; then
  echo "the build failed; its log: $SCRATCH/book.log (kept)"; KEEP=1; trap - EXIT
  tail -20 "$SCRATCH/book.log"
fi
[ -n "$KEEP" ] && echo "clone kept in $CLONE"
exit "$rc"
