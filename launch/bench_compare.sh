#!/usr/bin/env bash
# Ours against the peers (Horovod dense fp32 and fp16, DDP plain / PowerSGD / PostLocalSGD) on the
# 4.9M-parameter digits MLP, at 10 Gbit/s, 1 Gbit/s and 100 Mbit/s on 2 and 4 ranks: each run in a
# network namespace whose loopback is shaped with tc tbf (root needed; the namespaces are set up and
# removed by the benchmark itself). Results: runs/bench/results.md, plots and per-run files.
# Flags go to `python -m hvd_qsparse.bench.compare`, e.g.
#   bash launch/bench_compare.sh --bandwidths 1gbit --ranks 4 --variants 'hvd-fp32,qsparse-*'
#   bash launch/bench_compare.sh --bandwidths none --ranks 2 --epochs 1 --hidden 128   # a quick look, no root
# --list shows the variants; --help the rest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HVD_QSPARSE_ROOT"
exec python -m hvd_qsparse.bench.compare "$@"
