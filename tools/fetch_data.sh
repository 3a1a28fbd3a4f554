#!/usr/bin/env bash
# Makes the CIFAR-10 binary files available to the tool.
#
# If PIPELINE_CIFAR10 names a folder holding them, that folder is checked and
# used. Otherwise the official cifar-10-binary.tar.gz is downloaded into
# data/, its checksum verified and unpacked to data/cifar-10-batches-bin.
set -euo pipefail
# A relative PIPELINE_CIFAR10 means relative to where the script was called from.
if [ -n "${PIPELINE_CIFAR10:-}" ] && [ -d "$PIPELINE_CIFAR10" ]; then
  PIPELINE_CIFAR10="$(cd "$PIPELINE_CIFAR10" && pwd)"
fi
cd "$(dirname "$0")/.."

url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
archive_md5="c32a1d4ab5d03f1284b67883e8d87530"
declare -A file_md5=(
  [data_batch_1.bin]=5dd7e06a14cb22eb9f671a540d1b7c25
  [data_batch_2.bin]=5ea93a67294ea407fff1d09f752e9692
  [data_batch_3.bin]=942cd6a4bcdd0dd3c604fbe906cb4421
  [data_batch_4.bin]=ae636b3ba5c66a11e91e8cb52e771fcb
  [data_batch_5.bin]=53f37980c15c3d472c316c40844f3f0d
  [test_batch.bin]=803d5f7f4d78ea53de84dbe85f74fb6d
)

check_folder() {
  local dir="$1" name
  if [ ! -d "$dir" ]; then
    echo "fetch_data: $dir is not a folder; it should hold data_batch_1.bin ... test_batch.bin" >&2
    return 1
  fi
  for name in "${!file_md5[@]}"; do
    if [ ! -f "$dir/$name" ]; then
      echo "fetch_data: $dir/$name is missing" >&2
      return 1
    fi
    if [ "$(md5sum "$dir/$name" | cut -d' ' -f1)" != "${file_md5[$name]}" ]; then
      echo "fetch_data: $dir/$name does not match the official checksum; download it again" >&2
      return 1
    fi
  done
}

if [ -n "${PIPELINE_CIFAR10:-}" ]; then
  check_folder "$PIPELINE_CIFAR10"
  echo "fetch_data: using $PIPELINE_CIFAR10 (PIPELINE_CIFAR10)"
  exit 0
fi

target="data/cifar-10-batches-bin"
if [ -d "$target" ] && check_folder "$target" 2>/dev/null; then
  echo "fetch_data: $target is complete"
  exit 0
fi

mkdir -p data
echo "fetch_data: downloading $url"
if ! curl -fL --retry 3 -o data/cifar-10-binary.tar.gz.part "$url"; then
  rm -f data/cifar-10-binary.tar.gz.part
  cat >&2 <<TEXT
fetch_data: cannot download $url.
Without network access, copy the unpacked folder cifar-10-batches-bin (from
cifar-10-binary.tar.gz) to $PWD/$target, or set PIPELINE_CIFAR10 to the folder
that holds data_batch_1.bin ... test_batch.bin, then run this script again.
TEXT
  exit 1
fi
if [ "$(md5sum data/cifar-10-binary.tar.gz.part | cut -d' ' -f1)" != "$archive_md5" ]; then
  rm -f data/cifar-10-binary.tar.gz.part
  echo "fetch_data: the download does not match the official checksum $archive_md5; try again" >&2
  exit 1
fi
mv data/cifar-10-binary.tar.gz.part data/cifar-10-binary.tar.gz
tar -xzf data/cifar-10-binary.tar.gz -C data
check_folder "$target"
echo "fetch_data: $target is ready"
