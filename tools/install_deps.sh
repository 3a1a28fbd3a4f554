#!/usr/bin/env bash
# Installs the Debian 12 packages the project builds and runs with; --dev
# adds what CI and contributors use (the formatter, Chromium for the report
# test, Slurm and munge for the loopback cluster of the Slurm test (their
# daemons are not started here), clang with its sanitizer and libFuzzer
# runtimes for tools/sanitize.sh and tools/fuzz.sh). Idempotent: does nothing
# when every package is already installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config curl ca-certificates
  libtorch-dev libopenblas0-openmp
  libyaml-cpp-dev libsqlite3-dev sqlite3 libfmt-dev libhdf5-dev hdf5-tools
  libcli11-dev doctest-dev libstb-dev libxxhash-dev gnuplot-nox
)
if [ "${1:-}" = "--dev" ]; then
  packages+=(clang-format chromium slurmctld slurmd slurm-client munge clang libclang-rt-14-dev)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: every package is installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install_deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
