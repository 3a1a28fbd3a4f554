#!/usr/bin/env bash
# Configures and builds into build/ (override with BUILD_DIR). Extra
# arguments go to CMake, e.g. tools/build.sh -DPIPELINE_WERROR=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
# Lets ccache reuse objects between clones in different folders.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$build" --parallel "$(nproc)"
