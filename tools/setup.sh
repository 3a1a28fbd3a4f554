#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs: packages, the build, the data.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
tools/build.sh
tools/fetch_data.sh
