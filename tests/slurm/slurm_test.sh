#!/usr/bin/env bash
# The Slurm executor on a real single-node cluster on loopback (munged,
# slurmctld, slurmd started here, stopped on exit):
#   1. runs tests/slurm/sweep.yaml locally: the reference;
#   2. runs it with --executor slurm; once the first run has written its first
#      checkpoint, requeues its array task (`scontrol requeue`, as preemption
#      does): Slurm must start the same job again, which resumes; after its
#      checkpoint at epoch 3, cancels it with scancel: the coordinator must
#      submit it again, once; when the new task has started, kills the
#      coordinator (SIGKILL);
#   3. runs the same command again: it must follow the queued and running
#      tasks instead of submitting anything; stops it with Ctrl-C (status
#      130, the jobs keep running) and runs it once more to the end;
#   4. checks every run done, the metric rows equal to the reference's (17
#      significant digits), identical final checkpoints (h5diff), the
#      first run started three times (journal; the last from its checkpoint
#      at epoch >= 3), the others once, `pipeline status` showing the jobs,
#      and a database that passes its integrity check;
#   5. makes a task die at its third batch every time it starts: the run is
#      submitted three times, then fails with the reason (exit status 1).
#
# usage: slurm_test.sh PIPELINE
# Skips (exit 77) without the Slurm and munge programs or the data; in CI
# (CI set) those fail instead. Root is not needed.
set -euo pipefail
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
here="$(cd "$(dirname "$0")" && pwd)"
sweep="$here/sweep.yaml"
started=$(date +%s.%N)

skip() {
  if [ -n "${CI:-}" ]; then echo "slurm_test: $1 (required in CI)" >&2; exit 1; fi
  echo "slurm_test: $1; skipped"
  exit 77
}
for program in munged slurmctld slurmd sbatch squeue scancel sinfo scontrol; do
  command -v "$program" >/dev/null ||
    skip "no '$program' (tools/install_deps.sh --dev installs slurmctld slurmd slurm-client munge)"
done
command -v sqlite3 >/dev/null || skip "no sqlite3"
command -v h5diff >/dev/null || skip "no h5diff (hdf5-tools)"
data="${PIPELINE_CIFAR10:-$here/../../data/cifar-10-batches-bin}"
[ -f "$data/test_batch.bin" ] || skip "no CIFAR-10 folder (set PIPELINE_CIFAR10)"
export PIPELINE_CIFAR10="$data"

work="$(mktemp -d)"
chmod 755 "$work"  # munged's socket folder lies inside: others must traverse it
coordinator=""
cleanup() {
  if [ -n "$coordinator" ]; then kill -9 "$coordinator" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "slurm_test: kept $work (stop the cluster: $here/cluster_down.sh $work/cluster)" >&2
  else
    "$here/cluster_down.sh" "$work/cluster"
    rm -rf "$work"
  fi
}
trap cleanup EXIT

fail() {
  echo "slurm_test: FAILED: $1" >&2
  for log in "$work"/*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -n 40 "$log" >&2; }
  done
  exit 1
}

# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  local seconds="$1" what="$2" deadline
  shift 2
  deadline=$(($(date +%s) + seconds))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "waited ${seconds} s for $what"
    sleep 0.2
  done
}

metrics_of() {
  sqlite3 "$1/pipeline.db" "SELECT run, stage, name, step, printf('%.17g', value) FROM metrics
    WHERE name NOT IN ('train.images_per_s', 'train.epoch_seconds', 'train.checkpoint_seconds', 'train.page_faults')
    ORDER BY 1, 2, 3, 4"
}
attempts() { grep -c '"op": "attempt"' "$1" 2>/dev/null || true; }
started_times() { [ "$(attempts "$1")" -ge "$2" ]; }

# 1. The reference, on this machine.
"$bin" --root "$work/local" run "$sweep" >"$work/local.log" 2>&1 || fail "the local run failed"
metrics_of "$work/local" >"$work/local.metrics"
runs=$(sqlite3 "$work/local/pipeline.db" "SELECT run FROM sweep_runs ORDER BY position")
first=$(head -n 1 <<<"$runs")
local_seconds=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

# 2. The cluster, and the sweep on it.
cluster_started=$(date +%s.%N)
"$here/cluster_up.sh" "$work/cluster" >"$work/cluster.log" 2>&1 ||
  fail "the loopback Slurm cluster did not start"
export SLURM_CONF="$work/cluster/etc/slurm.conf"
echo "slurm_test: cluster up in $(awk -v a="$cluster_started" -v b="$(date +%s.%N)" \
  'BEGIN { printf "%.2f", b - a }') s; reference run took $local_seconds s"
export PIPELINE_SLURM_POLL=1
command=("$bin" --root "$work/slurm" run "$sweep" --executor slurm --cpus-per-task 1)

"${command[@]}" >"$work/coordinator1.log" 2>&1 &
coordinator=$!
journal="$work/slurm/$first/journal.jsonl"
wait_for 120 "the first checkpoint of run $first" grep -qs '"kind": "checkpoint"' "$journal"
task=$(sqlite3 "$work/slurm/pipeline.db" \
  "SELECT job || '_' || task FROM slurm_tasks WHERE run = '$first'")
# Preemption: Slurm stops the task and queues the same job again (--requeue).
scontrol requeue "$task"
echo "slurm_test: requeued task $task of run $first after its first checkpoint"
wait_for 90 "the requeued task to start again" started_times "$journal" 2
grep '"op": "attempt"' "$journal" | tail -n 1 | grep -q '"restart": 1' ||
  fail "the second start of run $first is not Slurm's restart of the same job"
# Cancelled after the restarted task's next checkpoint: the coordinator
# submits it again.
wait_for 60 "a checkpoint after the restart" \
  grep -qs '"name": "train.checkpoint_seconds", "step": 3' "$journal"
scancel "$task"
echo "slurm_test: cancelled task $task after its checkpoint at epoch 3"
wait_for 60 "the resubmitted task to start" started_times "$journal" 3
[ "$(grep -c "submitting it again" "$work/coordinator1.log")" -eq 1 ] ||
  fail "the coordinator did not submit the cancelled task exactly once"
kill -9 "$coordinator"
wait "$coordinator" 2>/dev/null || true
coordinator=""
running=$(squeue -h -r -o '%i %T' | tr '\n' ';')
echo "slurm_test: killed the coordinator; queue: $running"

# 3. The same command again: it follows what is queued and submits nothing.
#    Ctrl-C stops following (status 130) and leaves the jobs running; a third
#    start follows them to the end.
"${command[@]}" >"$work/coordinator2.log" 2>&1 &
coordinator=$!
wait_for 60 "the second coordinator to follow the jobs" \
  grep -q "following Slurm job" "$work/coordinator2.log"
kill -INT "$coordinator"
status=0
wait "$coordinator" || status=$?
coordinator=""
[ "$status" -eq 130 ] || fail "Ctrl-C gave the coordinator exit status $status, not 130"
grep -Eq "stays? queued or running on Slurm" "$work/coordinator2.log" ||
  fail "Ctrl-C did not say the jobs keep running"
status=0
timeout 300 "${command[@]}" >"$work/coordinator3.log" 2>&1 || status=$?
[ "$status" -eq 0 ] || fail "the third coordinator ended with status $status"
if grep -q "submitted [0-9]" "$work/coordinator2.log" "$work/coordinator3.log"; then
  fail "a restarted coordinator submitted runs again instead of following them"
fi

# 4. The results.
done_runs=$(sqlite3 "$work/slurm/pipeline.db" "SELECT count(*) FROM runs WHERE status = 'done'")
[ "$done_runs" -eq "$(wc -l <<<"$runs")" ] || fail "$done_runs runs done, not $(wc -l <<<"$runs")"
metrics_of "$work/slurm" >"$work/slurm.metrics"
diff "$work/local.metrics" "$work/slurm.metrics" >"$work/metrics.diff" ||
  fail "the metrics differ from the local run: $(head -n 5 "$work/metrics.diff")"
for run in $runs; do
  h5diff "$work/local/$run/checkpoint.h5" "$work/slurm/$run/checkpoint.h5" >/dev/null ||
    fail "run $run: the final checkpoint differs from the local run's"
  expected=1
  [ "$run" = "$first" ] && expected=3
  [ "$(attempts "$work/slurm/$run/journal.jsonl")" -eq "$expected" ] ||
    fail "run $run: $(attempts "$work/slurm/$run/journal.jsonl") task attempts, not $expected"
done
grep -q '"op": "finish", "status": "interrupted"' "$journal" ||
  fail "the cancelled task did not record its interruption"
resumed=$(grep '"op": "attempt"' "$journal" | tail -n 1 | sed -E 's/.*"checkpoint_epoch": ([0-9]+).*/\1/')
[ "$resumed" -ge 3 ] || fail "the resubmitted task started from epoch $resumed, not its checkpoint"
grep -q "resuming from .* at epoch" "$work/slurm/$first/log.txt" ||
  fail "the resubmitted task did not resume from its checkpoint"
"$bin" --root "$work/slurm" status >"$work/status.txt"
grep -q "slurm" "$work/status.txt" && grep -q "COMPLETED" "$work/status.txt" ||
  fail "status shows no Slurm jobs: $(cat "$work/status.txt")"
[ "$(sqlite3 "$work/slurm/pipeline.db" "PRAGMA integrity_check")" = ok ] ||
  fail "the database fails its integrity check"

# 5. A task that dies before it finishes anything, every time (a fault
#    point kills it at its third batch), is submitted again only a few times;
#    then the run fails with the reason and the coordinator exits with 1.
status=0
PIPELINE_FAULT=train-batch:3 timeout 300 "$bin" --root "$work/lost" run "$sweep" --executor slurm \
  --set 'model.hidden=[32]' --set train.epochs=2 >"$work/lost.log" 2>&1 || status=$?
[ "$status" -eq 1 ] || fail "a run that keeps dying gave exit status $status, not 1"
lost_run=$(sqlite3 "$work/lost/pipeline.db" "SELECT id FROM runs")
[ "$(sqlite3 "$work/lost/pipeline.db" "SELECT status FROM runs")" = failed ] ||
  fail "a run that keeps dying is not marked failed"
sqlite3 "$work/lost/pipeline.db" "SELECT error FROM runs" | grep -q "without progress" ||
  fail "the failed run does not say why"
lost_attempts=$(attempts "$work/lost/$lost_run/journal.jsonl")
[ "$lost_attempts" -eq 3 ] || fail "a run that keeps dying started $lost_attempts times, not 3"

total=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "slurm_test: passed in $total s: $(wc -l <"$work/slurm.metrics") metric rows equal to the" \
  "local run's; run $first requeued, then cancelled, resubmitted and resumed from epoch" \
  "$resumed;" \
  "the restarted coordinator followed the queued tasks; a task dying at every start" \
  "failed its run after $lost_attempts attempts"
