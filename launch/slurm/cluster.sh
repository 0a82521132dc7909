#!/usr/bin/env bash
# A throwaway single-node Slurm cluster on this machine, for testing the sbatch templates:
#   bash launch/slurm/cluster.sh start DIR   # munged + slurmctld + slurmd, config and logs in DIR
#   bash launch/slurm/cluster.sh stop DIR
# `start` installs Debian's slurm-wlm and munge when missing and prints `export SLURM_CONF=...`
# last. It exits 77 (the "skip" code) when the cluster cannot exist here: not root, no apt, or
# the daemons do not come up; the reason goes to stderr. Settings: ../../../shared/DESIGN.md.
set -euo pipefail
action=${1:?usage: cluster.sh start|stop DIR}
dir=$(mkdir -p "${2:?usage: cluster.sh start|stop DIR}" && cd "$2" && pwd)
skip() { echo "slurm cluster: $*" >&2; exit 77; }
log() { echo "slurm cluster: $*" >&2; }

stop() {
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    if [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      kill "$(cat "$pidfile")" || true
    fi
  done
  sleep 1
}

install() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return
  command -v apt-get >/dev/null || skip "slurm-wlm is not installed and there is no apt-get"
  log "installing Debian's slurm-wlm and munge"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >"$dir/apt.log" 2>&1 \
    || { apt-get update -q >>"$dir/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -q slurm-wlm munge >>"$dir/apt.log" 2>&1; } \
    || skip "apt-get install slurm-wlm munge failed (see $dir/apt.log)"
}

start_munge() {
  [[ -s /etc/munge/munge.key ]] || mungekey -c -k /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --pid-file="$dir/munged.pid" --force \
      || skip "munged did not start"
  fi
}

write_conf() {
  local host; host=$(hostname -s)
  mkdir -p "$dir/state" "$dir/spool"
  cat >"$dir/slurm.conf" <<CONF
ClusterName=hvdqsparse
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=$host CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  [[ $(id -u) -eq 0 ]] || skip "needs root (slurmd and munged run as system daemons)"
  install
  stop
  start_munge
  write_conf
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF" || skip "slurmctld did not start (see $dir/slurmctld.log)"
  slurmd -f "$SLURM_CONF" || skip "slurmd did not start (see $dir/slurmd.log)"
  for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
      echo "export SLURM_CONF=$SLURM_CONF"
      return
    fi
    sleep 1
  done
  stop
  skip "the node did not become idle within 60 s (see $dir/slurmctld.log, $dir/slurmd.log)"
}

case $action in
  start) start ;;
  stop) stop ;;
  *) echo "usage: cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
