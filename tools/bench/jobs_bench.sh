#!/usr/bin/env bash
# `run --jobs` against one job, alternating, on sweeps of small point-cloud
# nets: experiments/pca_nonlinear.yaml (9 runs) and the same grid over two
# and four data seeds (18 and 36 runs). For each: wall time with 1 job and
# with N jobs (medians), the stages' own seconds from the database, and how
# far N jobs are above the ideal (1-job wall time / N, and stage work / N;
# N is meant to be the number of cores). A failed run stops the script and
# prints its log.
#
# usage: tools/bench/jobs_bench.sh [BUILD_DIR] [ROUNDS] [JOBS]
set -euo pipefail
build="${1:-build}"
rounds="${2:-3}"
jobs="${3:-2}"
here="$(cd "$(dirname "$0")/../.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
pipeline="$build/pipeline"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for seeds in "2" "2, 3" "2, 3, 4, 5"; do
  file="$scratch/sweep.yaml"
  sed "s/^  grid:$/  grid:\n    data.seed: [$seeds]/" "$here/experiments/pca_nonlinear.yaml" > "$file"
  one=(); many=(); work=()
  for ((r = 0; r < rounds; r++)); do
    rm -rf "$scratch/one" "$scratch/many"
    start=$(date +%s.%N)
    "$pipeline" --root "$scratch/one" run "$file" > "$scratch/log" 2>&1 || { cat "$scratch/log"; exit 1; }
    one+=("$(echo "$(date +%s.%N) - $start" | bc)")
    start=$(date +%s.%N)
    "$pipeline" --root "$scratch/many" run "$file" --jobs "$jobs" > "$scratch/log" 2>&1 || { cat "$scratch/log"; exit 1; }
    many+=("$(echo "$(date +%s.%N) - $start" | bc)")
    work+=("$("$pipeline" --root "$scratch/one" query "SELECT sum(seconds) FROM stages" --format csv | tail -1)")
  done
  runs="$("$pipeline" --root "$scratch/one" query "SELECT count(*) FROM runs" --format csv | tail -1)"
  a=$(printf '%s\n' "${one[@]}" | median)
  b=$(printf '%s\n' "${many[@]}" | median)
  w=$(printf '%s\n' "${work[@]}" | median)
  awk -v runs="$runs" -v a="$a" -v b="$b" -v w="$w" -v n="$jobs" 'BEGIN {
    printf "%s runs: 1 job %.2f s, %d jobs %.2f s (%.2fx); above 1-job time / %d: %.0f%%; stage work %.2f s, above work / %d: %.0f%%\n",
           runs, a, n, b, a / b, n, 100 * (b / (a / n) - 1), w, n, 100 * (b / (w / n) - 1) }'
done
