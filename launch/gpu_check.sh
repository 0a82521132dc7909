#!/usr/bin/env bash
# The GPU check of the CuPy kernels: one command on one H100/H200 with torch and CuPy (no Horovod,
# no network needed), at most 8 minutes. It runs tests/gpu (every kernel against the torch
# reference: same selected sets, same packed bytes, values within float tolerance, scales within
# 1 ulp), the CPU checks of tests/kernels (NVRTC and the host harness), and the kernel benchmark,
# and writes everything to one file.
#
# Usage: bash launch/gpu_check.sh [FILE]   (default: $OUT/gpu_check.txt, else ./gpu_check.txt)
# Env:   PYTHON  the interpreter holding torch and CuPy (default python3)
# Exit status: that of the tests (the benchmark's figures are recorded, never judged); 3 with no GPU.
# Once it has passed on a GPU, set hvd_qsparse.ops.dispatch.KERNELS_VERIFIED_ON to "<device>,
# <date>" so that HVD_QSPARSE_OPS=auto uses the kernels.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
REPORT="${1:-${OUT:-.}/gpu_check.txt}"
cd "$ROOT"
if ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
  echo "gpu_check: $PYTHON's torch sees no CUDA GPU; this check needs one (tests/kernels is the CPU half)" >&2
  exit 3
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HVD_QSPARSE_OPS=cupy
{
  echo "# hvd_qsparse GPU check, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  "$PYTHON" -c "import torch, cupy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cupy', cupy.__version__, torch.cuda.get_device_name())" 2>&1
  echo "## tests"
} > "$REPORT"
timeout 300 "$PYTHON" -m pytest -q -p no:cacheprovider -rs tests/gpu tests/kernels 2>&1 | tee -a "$REPORT"
status=${PIPESTATUS[0]}
echo "## kernel benchmark (tests exit status $status)" >> "$REPORT"
timeout 150 "$PYTHON" -m hvd_qsparse.bench.kernels --devices cuda --sizes 1M,25M,100M --ratios 0.1,0.01,0.001 \
  --repeats 5 2>&1 | tee -a "$REPORT"
echo "report: $REPORT"
exit "$status"
