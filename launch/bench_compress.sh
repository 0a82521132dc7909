#!/usr/bin/env bash
# Compression cost per step beside compute on the job's models, fused and per tensor, side by
# side in one run (one rank). Flags go to `python -m hvd_qsparse.bench.compress_cost`, e.g.
# --model transformer --compressor topk+qsgd
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HVD_QSPARSE_ROOT"
exec python -m hvd_qsparse.bench.compress_cost "$@"
