# Sourced by the launch scripts: set up (idempotent) and export what local ranks need.
HVD_QSPARSE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HVD_QSPARSE_PY="$(bash "$HVD_QSPARSE_ROOT/launch/setup.sh" | tail -n 1)"
export PATH="$(dirname "$HVD_QSPARSE_PY"):$PATH"
# OpenMPI refuses to run as root without these (containers, CI).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# One compute thread per rank, so two ranks on two cores do not fight.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
