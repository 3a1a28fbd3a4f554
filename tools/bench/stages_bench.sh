#!/usr/bin/env bash
# The stage-level speed targets of the training-speed issue, on the real data:
# ingest of all six files (uncached, files warm in the page cache), evaluate
# and modify against a 20-epoch training of S and W, and D's peak memory.
#
# usage: tools/bench/stages_bench.sh [BUILD_DIR] [THREADS]
# Needs PIPELINE_CIFAR10. Takes about 5 minutes on 2 cores.
set -euo pipefail
build="${1:-build}"
threads="${2:-2}"
here="$(cd "$(dirname "$0")/../.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
pipeline="$build/pipeline"

echo "## ingest, all six files, no cache (3 tries)"
cat "$PIPELINE_CIFAR10"/*.bin > /dev/null  # warm the page cache
for i in 1 2 3; do
  # A one-epoch run of a tiny net; only the ingest line matters here.
  "$pipeline" --root "$scratch/ingest-$i" run "$here/experiments/quick.yaml" \
    --set data.train_limit=0 --set data.test_limit=0 --set train.epochs=1 \
    --set model.hidden=[16] --set modify.attractor_sample=0 --set modify.steps=1 \
    --set modify.record=[1] 2>&1 | sed -n 's/.*INFO  ingest: .*, \([0-9.]*\) s$/ingest \1 s/p'
done

echo "## evaluate + modify against 20 epochs of training (threads $threads)"
for hidden in 1024 4096; do
  root="$scratch/stages-$hidden"
  "$pipeline" --root "$root" run "$here/experiments/width_sweep.yaml" \
    --set "model.hidden=[$hidden]" --set train.epochs=20 --set train.checkpoint_every=20 \
    --set "train.threads=$threads" > "$root.log" 2>&1
  "$pipeline" --root "$root" query \
    "SELECT p.value AS net, printf('%.1f', t.seconds) AS train_s, printf('%.1f', e.seconds) AS evaluate_s, printf('%.1f', m.seconds) AS modify_s, printf('%.1f%%', 100 * (e.seconds + m.seconds) / t.seconds) AS share FROM stages t JOIN stages e ON e.run = t.run AND e.stage = 'evaluate' JOIN stages m ON m.run = t.run AND m.stage = 'modify' JOIN params p ON p.run = t.run AND p.key = 'model.architecture' WHERE t.stage = 'train'"
done

echo "## D: peak memory of training (batch 256, $threads threads, 3 steps)"
/usr/bin/time -v "$build/tools/bench/train_bench" D 256 "$threads" 3 2>&1 |
  sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\)/peak RSS \1 kB/p; /images_per_s/p'
