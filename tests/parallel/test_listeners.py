"""What a job exposes: on one machine the ranks of every launch script open no TCP listener
(``launch/mpirun.sh`` and ``launch/train.sh`` talk through shared memory; the elastic job's Gloo
pairs listen on the loopback), but for the one notification service Horovod's elastic worker
binds to every interface, and no environment value shows on a process's command line. What
remains is the launchers' own bootstrap listeners (Open MPI 4.1's and the Gloo rendezvous
server's, bound to every interface with no option to bind them to one; the README says so)."""
import glob
import os
import subprocess
import time

import pytest

from conftest import ROOT, children, launch_env

pytestmark = pytest.mark.timeout(300)


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


#: launch script → (flags, NP, how a rank's command line reads)
SCRIPTS = {
    "launch/mpirun.sh": (["--epochs", "30", "--no-progress"], "2", "hvd_qsparse.jobs.train"),
    "launch/train.sh": (["--epochs", "30", "--no-progress"], "2", "hvd_qsparse.jobs.train"),
    "launch/train_elastic.sh": (["--epochs", "8"], "3", "hvd_qsparse.jobs.train_elastic"),
}
SECRET = "s3cr3t-7f0c2a9e-token"
#: /proc/net/tcp{,6} addresses: every interface, and the loopback
WILDCARD = {"00000000", "0" * 32}
LOOPBACK = {"0100007F", "0" * 24 + "01000000"}


def command_lines(pids) -> dict:
    found = {}
    for pid in pids:
        try:
            found[pid] = open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
        except OSError:
            continue
    return found


def is_rank(line: str, marker: str) -> bool:
    """A rank's command line: Python running the job (not a launcher whose arguments name it)."""
    words = line.split()
    return bool(words) and os.path.basename(words[0]).startswith("python") and marker in line \
        and "horovodrun" not in line


def watch_job(script: str):
    """Run a launch script on one machine with a secret in its environment; return its exit code
    and output, the ranks seen, every listening socket and every command line of its processes."""
    flags, np, rank_marker = SCRIPTS[script]
    env = dict(launch_env(), NP=np, EXAMPLE_API_TOKEN=SECRET)
    for name in ("HOSTS", "HOSTFILE", "MPI_ARGS"):
        env.pop(name, None)
    proc = subprocess.Popen(["bash", script, *flags], cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    ranks, seen, lines = set(), {}, {}
    deadline = time.monotonic() + 150
    while proc.poll() is None and time.monotonic() < deadline:
        pids = children(proc.pid)
        lines.update(command_lines(pids))
        ranks |= {pid for pid, line in lines.items() if pid in pids and is_rank(line, rank_marker)}
        for pid, sockets in listeners(pids).items():
            seen.setdefault(pid, set()).update(sockets)
        time.sleep(0.5)
    out, _ = proc.communicate(timeout=150)
    return proc.returncode, out, ranks, seen, lines


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_a_one_machine_job_exposes_no_rank_listener_and_no_secret(script):
    rc, out, ranks, seen, lines = watch_job(script)
    assert rc == 0, out[-3000:]
    assert len(ranks) >= int(SCRIPTS[script][1]), f"never saw the ranks: {ranks}"
    rank_listeners = {pid: sockets for pid, sockets in seen.items() if pid in ranks}
    if script == "launch/train_elastic.sh":
        # Horovod's elastic worker runs a notification service (host changes from the driver)
        # that it binds to every interface, with no option: one per rank, all else loopback.
        wildcard = {pid: [s for s in sockets if s[0] in WILDCARD] for pid, sockets in rank_listeners.items()}
        assert all(len(found) <= 1 for found in wildcard.values()), f"ranks listen on {rank_listeners}"
        others = {pid: [s for s in sockets if s[0] not in WILDCARD | LOOPBACK] for pid, sockets in
                  rank_listeners.items()}
        assert not any(others.values()), f"ranks listen on {others}"
    else:
        assert not rank_listeners, f"ranks listen on {rank_listeners}"
    leaking = {pid: line[:200] for pid, line in lines.items() if SECRET in line}
    assert not leaking, f"an environment value shows on command lines: {leaking}"
