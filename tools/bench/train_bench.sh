#!/usr/bin/env bash
# Side-by-side training speed: the Python loop (as is, and with glibc's malloc
# kept from returning large blocks to the kernel) against pipeline's train
# loop, alternating A B C A B C in one run; medians of ROUNDS rounds.
#
# usage: tools/bench/train_bench.sh [BUILD_DIR] [ROUNDS] [NETS] [BATCHES] [THREADS]
#   e.g. tools/bench/train_bench.sh build 3 "S W D" "64 256" "1 2"
set -euo pipefail
build="${1:-build}"
rounds="${2:-3}"
nets="${3:-S W D}"
batches="${4:-64 256}"
thread_counts="${5:-1 2}"
here="$(cd "$(dirname "$0")" && pwd)"
# Debian's python3-torch lives under the system Python, whatever else is on PATH.
python="${PYTHON:-/usr/bin/python3}"
tuned="glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
if ! "$python" -c "import torch" 2> /dev/null; then
  echo "train_bench.sh: $python cannot import torch; install Debian's python3-torch" \
    "(apt-get install python3-torch) or point PYTHON at a Python that has it" >&2
  exit 2
fi
[ -x "$build/tools/bench/train_bench" ] || {
  echo "train_bench.sh: $build/tools/bench/train_bench is missing; build the project first" >&2
  exit 2
}

steps_for() {  # about five seconds a measurement on 2 cores
  case "$1" in S) echo 100 ;; W) echo 20 ;; *) echo 4 ;; esac
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "OpenBLAS kernels: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset (OpenBLAS chooses)}"
echo
echo "| net | batch | threads | Python img/s | Python tuned img/s | pipeline img/s | ratio to best Python | pipeline GFLOP/s | matmul ceiling GFLOP/s | share of ceiling |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for net in $nets; do
  for batch in $batches; do
    for threads in $thread_counts; do
      steps=$(( $(steps_for "$net") * 64 / batch ))
      [ "$steps" -ge 3 ] || steps=3
      py=(); pyt=(); cpp=(); gf=(); ceil=()
      for ((r = 0; r < rounds; r++)); do
        py+=("$("$python" "$here/train_bench.py" "$net" "$batch" "$threads" "$steps" | field images_per_s)")
        pyt+=("$(GLIBC_TUNABLES=$tuned "$python" "$here/train_bench.py" "$net" "$batch" "$threads" "$steps" | field images_per_s)")
        line="$("$build/tools/bench/train_bench" "$net" "$batch" "$threads" "$steps")"
        cpp+=("$(echo "$line" | field images_per_s)")
        gf+=("$(echo "$line" | field gflops)")
        ceil+=("$(echo "$line" | field mm_ceiling)")
      done
      p=$(printf '%s\n' "${py[@]}" | median)
      pt=$(printf '%s\n' "${pyt[@]}" | median)
      c=$(printf '%s\n' "${cpp[@]}" | median)
      g=$(printf '%s\n' "${gf[@]}" | median)
      m=$(printf '%s\n' "${ceil[@]}" | median)
      awk -v n="$net" -v b="$batch" -v t="$threads" -v p="$p" -v pt="$pt" -v c="$c" -v g="$g" -v m="$m" \
        'BEGIN { best = p > pt ? p : pt;
                 printf "| %s | %s | %s | %.0f | %.0f | %.0f | %.2fx | %.0f | %.0f | %.0f%% |\n",
                        n, b, t, p, pt, c, c / best, g, m, 100 * g / m }'
    done
  done
done
