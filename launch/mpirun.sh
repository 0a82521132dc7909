#!/usr/bin/env bash
# The main job through plain mpirun (Debian's OpenMPI): set everything up (idempotent), then
# train. Flags go to `python -m hvd_qsparse.jobs.train`, e.g.
#   NP=4 bash launch/mpirun.sh --algorithm doublesqueeze --compressor sign
# Environment: NP ranks (default 2); HOSTS="node1:2,node2:2" or HOSTFILE=path (mpirun's
# -H / --hostfile); MPI_ARGS replaces the default "--oversubscribe --bind-to none", to which
# one machine (no HOSTS, no HOSTFILE) adds "--mca btl self,vader": the ranks then talk through
# shared memory and open no TCP listener at all. Running as root is allowed by launch/env.sh;
# PATH and the environment reach remote ranks with -x.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HVD_QSPARSE_ROOT"
hosts=()
[[ -n ${HOSTS:-} ]] && hosts=(-H "$HOSTS")
[[ -n ${HOSTFILE:-} ]] && hosts=(--hostfile "$HOSTFILE")
default_args="--oversubscribe --bind-to none"
[[ ${#hosts[@]} -eq 0 ]] && default_args+=" --mca btl self,vader"
read -r -a mpi_args <<<"${MPI_ARGS:-$default_args}"
exec mpirun -np "${NP:-2}" "${hosts[@]}" "${mpi_args[@]}" -x PATH -x OMP_NUM_THREADS \
  -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM python -m hvd_qsparse.jobs.train "$@"
