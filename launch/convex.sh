#!/usr/bin/env bash
# The full-batch convex job through horovodrun: set everything up (idempotent), then run
# distributed gradient descent on L2-regularised logistic regression (scikit-learn's digits,
# one-vs-rest). Without flags it runs --grid: GD, then GD-SEC for each (β, ξ), and prints the
# bits each needs to reach a relative optimality gap of 1e-6. Flags go to
# `python -m hvd_qsparse.jobs.convex`, e.g.
#   bash launch/convex.sh --algorithm gdsec --xi 1.5 --beta 1
#   bash launch/convex.sh --grid --dataset breast_cancer --xi-grid 1,3
# Environment: NP ranks (default 2); HOSTS="node1:2,node2:2" or HOSTFILE=path (horovodrun's
# -H / -hostfile); MPI_ARGS for mpirun (default: oversubscribe, no binding, and on one machine
# no TCP, UCX or OFI transport). horovodrun runs in a session of its own (run_job, launch/env.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HVD_QSPARSE_ROOT"
hosts=()
[[ -n ${HOSTS:-} ]] && hosts=(-H "$HOSTS")
[[ -n ${HOSTFILE:-} ]] && hosts=(-hostfile "$HOSTFILE")
args=("$@")
[[ ${#args[@]} -eq 0 ]] && args=(--grid)
default_args="--oversubscribe --bind-to none"
[[ ${#hosts[@]} -eq 0 ]] && default_args+=" --mca btl_base_exclude tcp,uct,ofi,openib"
run_job horovodrun -np "${NP:-2}" "${hosts[@]}" --mpi-args="${MPI_ARGS:-$default_args}" \
  python -m hvd_qsparse.jobs.convex "${args[@]}"
