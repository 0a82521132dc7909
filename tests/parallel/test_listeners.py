"""What a job exposes on the network: on one machine, ``launch/mpirun.sh`` ranks open no TCP
listener (shared memory only); the launcher's own bootstrap listener is what remains (Open MPI
4.1 binds it to every interface and has no option to bind it to one; the README says so)."""
import glob
import os
import subprocess
import time

import pytest

from conftest import ROOT, launch_env

pytestmark = pytest.mark.timeout(300)


def children(pid: int):
    """Every descendant process of ``pid``."""
    parents = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
            parents[int(stat.split("/")[2])] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def listeners(pids):
    """``{pid: [(address, port)]}`` of the TCP sockets in LISTEN state these processes hold."""
    inodes = {}
    for pid in pids:
        for fd in glob.glob(f"/proc/{pid}/fd/*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[target[8:-1]] = pid
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                found.setdefault(inodes[fields[9]], []).append((address, int(port, 16)))
    return found


def test_ranks_of_a_one_machine_job_open_no_listener():
    env = dict(launch_env(), NP="2")
    env.pop("HOSTS", None)
    env.pop("HOSTFILE", None)
    env.pop("MPI_ARGS", None)
    proc = subprocess.Popen(["bash", "launch/mpirun.sh", "--epochs", "30", "--no-progress"], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    ranks, seen = set(), {}
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        pids = children(proc.pid)
        ranks |= {p for p in pids if "hvd_qsparse.jobs.train" in open(f"/proc/{p}/cmdline").read().replace("\0", " ")
                  } if pids else set()
        for pid, sockets in listeners(pids).items():
            seen.setdefault(pid, set()).update(sockets)
        time.sleep(0.5)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert len(ranks) >= 2, f"never saw the ranks: {ranks}"
    rank_listeners = {pid: sockets for pid, sockets in seen.items() if pid in ranks}
    assert not rank_listeners, f"ranks listen on {rank_listeners}"
