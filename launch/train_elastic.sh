#!/usr/bin/env bash
# The elastic RI-SGD job on this machine: NP workers (default 3, at most 3 host names unless
# HVD_QSPARSE_EXTRA_HOSTS adds some, see discover_hosts.sh), going on with MIN_NP (default NP-1)
# after losing workers. Flags go to `python -m hvd_qsparse.jobs.train_elastic`, e.g.
#   bash launch/train_elastic.sh --compressor none --redundancy 2 --local-steps 4 --non-iid
# `--network-interfaces lo` keeps Gloo and the driver on the loopback (without it the launcher
# hung here); HOROVOD_GLOO_TIMEOUT_SECONDS bounds how long survivors wait for a dead peer and
# ELASTIC_TIMEOUT (default 600 s) how long the driver waits for workers after a reset. The
# launcher starts with only the environment gloo_job_env lets through (see launch/env.sh) and
# runs in a session of its own that a SIGINT/SIGTERM to this script ends (run_job).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$HVD_QSPARSE_ROOT"
NP="${NP:-3}"
mapfile -d "" -t job_env < <(gloo_job_env)
run_job env -i "${job_env[@]}" horovodrun --gloo -np "$NP" --min-np "${MIN_NP:-$((NP - 1))}" --max-np "$NP" \
  --elastic-timeout "${ELASTIC_TIMEOUT:-600}" \
  --host-discovery-script "$HVD_QSPARSE_ROOT/launch/discover_hosts.sh" --network-interfaces lo \
  python -m hvd_qsparse.jobs.train_elastic "$@"
