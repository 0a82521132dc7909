#!/usr/bin/env bash
# Error-feedback compression throughput (torch reference, our dispatched path, the torch.topk
# pipeline) for 1M/25M/100M entries and ratios 0.1/0.01/0.001, on the CPU and, where there
# is one, the GPU. Flags go to `python -m hvd_qsparse.bench.kernels`, e.g. --sizes 25M --ratios 0.01
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HVD_QSPARSE_ROOT"
exec python -m hvd_qsparse.bench.kernels "$@"
