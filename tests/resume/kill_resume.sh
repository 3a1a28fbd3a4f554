#!/usr/bin/env bash
# Crash test: runs a sweep, kills it with SIGKILL (at fault points in every
# stage, half-way through checkpoint writes, and at random moments), reruns
# it to the end and checks that the result equals an uninterrupted run:
# every run done, checkpoints identical (h5diff), the same metric rows, a
# database that passes its integrity check.
#
# usage: kill_resume.sh PIPELINE [TRIALS] [SEED]
#   TRIALS  number of trials (default 14): 9 fault points, one Ctrl-C, then
#           two SIGKILLs at random moments per trial
set -euo pipefail
bin="$1"
trials="${2:-14}"
RANDOM="${3:-1}"
here="$(cd "$(dirname "$0")" && pwd)"
experiment="$here/resume.yaml"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

faults=(train-batch:5 checkpoint-write:1 checkpoint-swap:2 epoch-end:3 checkpoint-write:3
        evaluate:1 modify:2 report:1 train-batch:40)

metrics_of() {
  sqlite3 "$1/pipeline.db" "SELECT run, stage, name, step, printf('%.17g', value) FROM metrics
    WHERE name NOT IN ('train.images_per_s', 'train.epoch_seconds', 'train.checkpoint_seconds', 'train.page_faults')
    ORDER BY 1, 2, 3, 4"
}

# The real data: $PIPELINE_CIFAR10, else the folder tools/fetch_data.sh fills.
data="${PIPELINE_CIFAR10:-$here/../../data/cifar-10-batches-bin}"
if [ ! -f "$data/test_batch.bin" ]; then
  if [ -n "${CI:-}" ]; then echo "kill_resume: CI must set PIPELINE_CIFAR10" >&2; exit 1; fi
  echo "kill_resume: no CIFAR-10 folder (set PIPELINE_CIFAR10); skipped"
  exit 77
fi
export PIPELINE_CIFAR10="$data"

start=$(date +%s.%N)
if ! "$bin" --root "$work/ref" run "$experiment" >"$work/ref.log" 2>&1; then
  echo "kill_resume: the uninterrupted reference run failed:" >&2
  cat "$work/ref.log" >&2
  exit 1
fi
reference_seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
metrics_of "$work/ref" >"$work/ref.metrics"
runs=$(sqlite3 "$work/ref/pipeline.db" "SELECT id FROM runs")

failures=0
for ((trial = 1; trial <= trials; trial++)); do
  root="$work/t$trial"
  if ((trial == ${#faults[@]} + 1)); then
    # Ctrl-C half-way: a checkpoint at the current batch, exit status 130.
    how="SIGINT"
    "$bin" --root "$root" run "$experiment" >"$work/t$trial.log" 2>&1 &
    pid=$!
    # The first epoch's line is always logged (short epochs after it may not be).
    until grep -q "epoch 1/4" "$work/t$trial.log" 2>/dev/null || ! kill -0 "$pid" 2>/dev/null; do
      sleep 0.05
    done
    kill -INT "$pid" 2>/dev/null || true
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 130 ] || { echo "trial $trial: SIGINT gave exit status $status, not 130";
      failures=$((failures + 1)); }
    grep -q "checkpoint written, run again to resume" "$work/t$trial.log" ||
      how="SIGINT (after training)"
  elif ((trial <= ${#faults[@]})); then
    how="fault ${faults[trial - 1]}"
    PIPELINE_FAULT="${faults[trial - 1]}" "$bin" --root "$root" run "$experiment" \
      >"$work/t$trial.log" 2>&1 && true
  else
    # Two kills at random moments within the reference run's duration.
    how="random kills"
    for kill in 1 2; do
      delay=$(awk -v t="$reference_seconds" -v r="$RANDOM" 'BEGIN { printf "%.3f", t * r / 32768 }')
      "$bin" --root "$root" run "$experiment" >>"$work/t$trial.log" 2>&1 &
      pid=$!
      sleep "$delay"
      kill -9 "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      how="$how ${delay}s"
    done
  fi
  "$bin" --root "$root" run "$experiment" >>"$work/t$trial.log" 2>&1 || {
    echo "trial $trial ($how): the rerun failed"; failures=$((failures + 1)); continue; }

  problems=""
  [ "$(sqlite3 "$root/pipeline.db" 'PRAGMA integrity_check')" = ok ] || problems+=" integrity"
  [ "$(sqlite3 "$root/pipeline.db" "SELECT count(*) FROM runs WHERE status != 'done'")" = 0 ] ||
    problems+=" not-done"
  metrics_of "$root" | cmp -s - "$work/ref.metrics" || problems+=" metrics"
  for run in $runs; do
    h5diff "$work/ref/$run/checkpoint.h5" "$root/$run/checkpoint.h5" >/dev/null 2>&1 ||
      problems+=" checkpoint-$run"
  done
  if [ -n "$problems" ]; then
    echo "trial $trial ($how): FAILED:$problems (log: kept in $work/t$trial.log)"
    cat "$work/t$trial.log"
    failures=$((failures + 1))
  else
    echo "trial $trial ($how): identical to the uninterrupted run"
  fi
done
echo "$((trials - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
