#!/usr/bin/env bash
# Builds the libFuzzer targets into build-fuzz/ (clang, -DPIPELINE_FUZZ=ON:
# ASan + UBSan, no LibTorch) and runs each for SECONDS (default 60), one after
# the other, single process, from its seed corpus in tests/fuzz/corpus/<name>/.
# New inputs go to build-fuzz/corpus-work/<name>/ (kept between runs), the
# log to build-fuzz/fuzz_<name>.log. Exit status 1 when a target finds a
# crash, a sanitizer report, a leak, an out-of-memory or a timeout; the input
# is left in build-fuzz/artifacts/.
#
#   tools/fuzz.sh [SECONDS] [NAME...]      NAME: config filter cifar picture
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
names=("$@")
if [ ${#names[@]} -eq 0 ]; then names=(config filter cifar picture); fi
build="${FUZZ_BUILD_DIR:-build-fuzz}"

export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DPIPELINE_FUZZ=ON -DPIPELINE_WERROR=ON >/dev/null
cmake --build "$build" --parallel "${JOBS:-$(nproc)}" --target $(printf 'fuzz_%s ' "${names[@]}")

mkdir -p "$build/artifacts"
status=0
for name in "${names[@]}"; do
  work="$build/corpus-work/$name"
  log="$build/fuzz_$name.log"
  mkdir -p "$work"
  dict=()
  if [ -f "tests/fuzz/$name.dict" ]; then dict=(-dict="tests/fuzz/$name.dict"); fi
  echo "== fuzz_$name: $seconds s"
  if ! "$build/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$name-" "${dict[@]}" \
    "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1; then
    status=1
    tail -n 60 "$log"
    echo "fuzz_$name: FAILED (log: $log)"
  fi
  grep -E "^#[0-9]+.*DONE|^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" || true
done
exit $status
