#!/usr/bin/env bash
# Starts a single-node Slurm cluster on loopback for the tests: munged,
# slurmctld and slurmd in the foreground of background shells (no systemd, no
# cgroups), with every file under DIR. Prints the SLURM_CONF to export.
# Stop it with cluster_down.sh DIR.
#
# usage: cluster_up.sh DIR   (DIR: an empty scratch folder)
# env:   SLURM_TEST_PORT  slurmctld's port (default 16817; slurmd uses the next one)
# Needs the Debian packages slurmctld slurmd slurm-client munge. Root is not
# needed: the daemons run as the user who starts them, and so do the jobs.
set -euo pipefail
dir="${1:?usage: cluster_up.sh DIR}"
port="${SLURM_TEST_PORT:-16817}"
user="$(id -un)"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
for sub in etc munge spool state log run; do
  rm -rf "${dir:?}/$sub"
  mkdir -p "$dir/$sub"
done

# munged insists that others can traverse every folder above its socket and
# that only its owner can read the key.
chmod a+x "$dir" "$dir/munge"
head -c 1024 /dev/urandom >"$dir/munge/munge.key"
chmod 0400 "$dir/munge/munge.key"

# The node as slurmd detects it, under the name `localhost` (the machine's
# own host name may not resolve), with a little memory left for the system.
memory_mb=$(awk '/^MemTotal:/ { m = int($2 / 1024) - 1024; print (m > 512 ? m : 512) }' /proc/meminfo)
node_line=$(sed -E -e 's/^NodeName=[^ ]+/NodeName=localhost NodeAddr=127.0.0.1/' \
  -e "s/RealMemory=[0-9]+/RealMemory=$memory_mb/" <<<"$(slurmd -C | head -n 1)")

# cred_expire=5: a requeued job may start again after 5 s instead of the
# default 120. sched_interval/bf_interval=1: the scheduler looks every second.
cat >"$dir/etc/slurm.conf" <<CONF
ClusterName=pipelinetest
SlurmctldHost=localhost
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2,cred_expire=5
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
ReturnToService=2
KillWait=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
$node_line State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/etc/slurm.conf"

munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket.2" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
  --seed-file="$dir/munge/munged.seed"

wait_for() {  # tenths of a second, then a command that must succeed
  local tenths="$1" i
  shift
  for ((i = 0; i < tenths; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "$@" >/dev/null 2>&1
}

slurmctld -D -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
echo $! >"$dir/run/slurmctld.bgpid"
if ! wait_for 100 bash -c 'scontrol ping | grep -q UP'; then
  echo "cluster_up: slurmctld did not come up:" >&2
  cat "$dir/log/slurmctld.out" "$dir/log/slurmctld.log" >&2 || true
  exit 1
fi
slurmd -D -N localhost -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 &
echo $! >"$dir/run/slurmd.bgpid"
if ! wait_for 200 bash -c 'sinfo -h -N -o %t | grep -qx idle'; then
  echo "cluster_up: the node did not become idle:" >&2
  sinfo -N -l >&2 || true
  cat "$dir/log/slurmd.out" "$dir/log/slurmd.log" >&2 || true
  exit 1
fi
echo "export SLURM_CONF=$SLURM_CONF"
