#!/usr/bin/env bash
# The README's job table: every algorithm on the MLP, the MNIST ResNet and the character
# transformer beside dense SGD (2 ranks). Flags go to `python -m hvd_qsparse.bench.job_table`,
# e.g. --models resnet --out runs/resnet
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HVD_QSPARSE_ROOT"
exec python -m hvd_qsparse.bench.job_table "$@"
