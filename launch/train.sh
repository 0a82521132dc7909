#!/usr/bin/env bash
# The main job through horovodrun: set everything up (idempotent), then train on
# scikit-learn's digits. Flags go to `python -m hvd_qsparse.jobs.train`, e.g.
#   bash launch/train.sh --compressor topk+qsgd --local-steps 8
# Environment: NP ranks (default 2); HOSTS="node1:2,node2:2" or HOSTFILE=path (horovodrun's
# -H / -hostfile) for several machines; MPI_ARGS for mpirun (default: oversubscribe, no binding,
# and on one machine no TCP, UCX or OFI transport, so the ranks open no listener). horovodrun runs
# in a session of its own that a SIGINT/SIGTERM to this script ends (run_job in launch/env.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HVD_QSPARSE_ROOT"
hosts=()
[[ -n ${HOSTS:-} ]] && hosts=(-H "$HOSTS")
[[ -n ${HOSTFILE:-} ]] && hosts=(-hostfile "$HOSTFILE")
default_args="--oversubscribe --bind-to none"
[[ ${#hosts[@]} -eq 0 ]] && default_args+=" --mca btl_base_exclude tcp,uct,ofi,openib"
run_job horovodrun -np "${NP:-2}" "${hosts[@]}" --mpi-args="${MPI_ARGS:-$default_args}" \
  python -m hvd_qsparse.jobs.train "$@"
