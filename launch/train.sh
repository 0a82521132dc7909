#!/usr/bin/env bash
# The main job: set everything up (idempotent), then train on scikit-learn's digits across
# NP ranks (default 2) with horovodrun. Flags go to `python -m hvd_qsparse.train`, e.g.
#   bash launch/train.sh --compressor topk+qsgd --local-steps 8
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HVD_QSPARSE_ROOT"
exec horovodrun -np "${NP:-2}" --mpi-args="--oversubscribe --bind-to none" \
  python -m hvd_qsparse.train "$@"
