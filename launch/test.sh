#!/usr/bin/env bash
# The test command: set everything up (idempotent, Horovod cached), then run unit, parallel
# (real ranks under mpirun/horovodrun) and GPU (skipped without a GPU) tests.
# Extra arguments go to pytest, e.g. `bash launch/test.sh tests/unit -k topk`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HVD_QSPARSE_ROOT"
exec python -m pytest -p no:cacheprovider "${@:-tests}"
