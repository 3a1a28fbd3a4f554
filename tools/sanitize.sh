#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer and UndefinedBehaviorSanitizer
# into build-asan/ (clang, -DPIPELINE_SANITIZE=ON, no LibTorch) and runs them;
# any report (a leak included) fails the run. Extra arguments go to CMake.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${ASAN_BUILD_DIR:-build-asan}"
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DPIPELINE_SANITIZE=ON -DPIPELINE_TORCH=OFF \
  -DPIPELINE_WERROR=ON "$@" >/dev/null
cmake --build "$build" --parallel "${JOBS:-$(nproc)}" --target unit_tests
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
"$build/tests/unit_tests"
