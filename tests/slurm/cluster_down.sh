#!/usr/bin/env bash
# Stops the cluster cluster_up.sh started in DIR (by the process ids it
# recorded: SIGTERM, up to 15 s, then SIGKILL) and removes DIR unless
# KEEP=1.
#
# usage: cluster_down.sh DIR
dir="${1:?usage: cluster_down.sh DIR}"
[ -d "$dir" ] || exit 0

stop_all() {  # pid files
  local pids=() file pid i alive
  for file in "$@"; do
    [ -s "$file" ] || continue
    pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  for ((i = 0; i < 150; i++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  return 0
}

stop_all "$dir/run/slurmd.bgpid" "$dir/run/slurmctld.bgpid"
stop_all "$dir/munge/munged.pid"
[ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
