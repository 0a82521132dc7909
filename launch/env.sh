# Sourced by the launch scripts: set up (idempotent) and export what local ranks need.
HVD_QSPARSE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HVD_QSPARSE_PY="$(bash "$HVD_QSPARSE_ROOT/launch/setup.sh" | tail -n 1)"
export PATH="$(dirname "$HVD_QSPARSE_PY"):$PATH"
# OpenMPI refuses to run as root without these (containers, CI).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# One compute thread per rank, so two ranks on two cores do not fight.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

# Runs the launcher "$@" in a session of its own and ends that whole session when this script
# gets SIGINT, SIGTERM or SIGHUP; returns the launcher's exit code. horovodrun execs
# `/bin/sh -c mpirun ...`, a shell that does not pass on a signal sent to it alone, so without
# this a Ctrl-C sent to the launcher's pid left the ranks training. A job started in the
# background ignores SIGINT, so every process of the session (mpirun puts each rank in a
# process group of its own, so the session, not a group) gets SIGTERM (every rank ends; rows already in
# --metrics stay on disk), and this returns once no process of the session is left.
run_job() {
  setsid "$@" &
  local pid=$! rc=0
  trap "pkill -TERM -s $pid || true" INT TERM HUP
  while :; do
    wait "$pid" && rc=0 || rc=$?
    kill -0 "$pid" 2>/dev/null || break
  done
  trap - INT TERM HUP
  # The launcher is gone; ranks it was ending may take a moment longer: wait for every live
  # process of the session (up to 30 s, zombies aside), then kill what is left.
  local tries=0
  while ps -o stat= --sid "$pid" 2>/dev/null | grep -qv '^Z' && ((tries++ < 150)); do sleep 0.2; done
  pkill -KILL -s "$pid" || true
  return "$rc"
}

# The environment a Gloo job starts with, as NAME=VALUE words for `env -i`. Horovod's Gloo
# launcher writes the value of every variable it passes into each worker's command line, where
# the process list (and verbose logs) show it; so only what a job needs goes: the usual
# locale, paths and thread settings, HOROVOD_*, NCCL_*, GLOO_*, HVD_QSPARSE_* and the names
# listed in HVD_QSPARSE_PASS_ENV (space separated). Keep secrets out of those.
gloo_job_env() {
  local name
  for name in $(compgen -e); do
    case $name in
      PATH | HOME | USER | LOGNAME | SHELL | TERM | LANG | LC_* | TZ | TMPDIR | PYTHONPATH | VIRTUAL_ENV | \
        OMP_NUM_THREADS | CUDA_VISIBLE_DEVICES | HOROVOD_* | NCCL_* | GLOO_* | HVD_QSPARSE_*)
        printf '%s\0' "$name=${!name}" ;;
    esac
  done
  for name in ${HVD_QSPARSE_PASS_ENV:-}; do
    [[ -n ${!name+set} ]] && printf '%s\0' "$name=${!name}"
  done
  return 0
}
