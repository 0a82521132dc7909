#!/usr/bin/env bash
# Host discovery for Horovod's elastic driver on ONE machine: one slot under each of several
# names of this machine. The driver blacklists a failed worker's host name; with a single
# `localhost:3` one lost worker blacklists the whole machine and the job stops, so each worker
# gets a name of its own: localhost, 127.0.0.1, $(hostname), then any names in
# HVD_QSPARSE_EXTRA_HOSTS (space separated, e.g. the machine's other addresses) for more workers.
echo "localhost:1"
echo "127.0.0.1:1"
echo "$(hostname):1"
for host in ${HVD_QSPARSE_EXTRA_HOSTS:-}; do
  echo "${host}:1"
done
