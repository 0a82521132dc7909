"""Not a rank script: the driver of one network fault, run as ``unshare -n python in_netns.py``.

Inside a fresh network namespace (only a loopback, which it brings up) it starts a job, waits
until the job's ``--metrics`` file holds ``--rows`` rows (so training is under way), then
injects the fault: ``down`` sets the loopback down, as a dead link or a pulled cable would;
``slow`` shapes it from the start to 1 Mbit/s with a short queue (a token bucket that drops
what overflows, so TCP sees loss and resends). It waits up to ``--bound`` seconds for the job
to end, kills the job's session if it has not (a hang), and prints one JSON line: exit code,
seconds from the fault to the end, rows at the fault and at the end, packets dropped, and
whether any process of the job was left alive.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def rows(path: str) -> int:
    try:
        with open(path) as fh:
            return max(0, sum(1 for _ in fh) - 1)
    except OSError:
        return 0


def alive(session: int) -> list:
    """Pids of the session's processes that are not zombies (nobody reaps orphans here)."""
    out = subprocess.run(["ps", "-o", "pid=,stat=", "--sid", str(session)], stdout=subprocess.PIPE, text=True).stdout
    return [int(pid) for pid, stat in (line.split() for line in out.splitlines()) if not stat.startswith("Z")]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--fault", choices=["down", "slow"], required=True)
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--after", type=float, default=120, help="inject the fault after this many seconds at the latest")
    p.add_argument("--bound", type=float, default=60)
    p.add_argument("--metrics", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    args = p.parse_args()
    sh("ip", "link", "set", "lo", "up")
    if args.fault == "slow":
        # An Ethernet-sized MTU: the loopback's 64 KiB packets would exceed the bucket and never pass.
        sh("ip", "link", "set", "lo", "mtu", "1500")
        sh("tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "1mbit", "burst", "16kb", "limit", "24kb")
    with open(args.log, "w") as log:
        job = subprocess.Popen(args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    fault_at = time.monotonic()
    if args.fault == "down":
        while job.poll() is None and rows(args.metrics) < args.rows and time.monotonic() - fault_at < args.after:
            time.sleep(0.1)
        fault_at, at_fault = time.monotonic(), rows(args.metrics)
        sh("ip", "link", "set", "lo", "down")
    else:
        at_fault = 0
    try:
        rc = job.wait(timeout=args.bound)
        hung = False
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        rc, hung = job.wait(), True
    seconds = time.monotonic() - fault_at
    time.sleep(1)
    left = alive(job.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    dropped = re.search(r"dropped (\d+)", sh("tc", "-s", "qdisc", "show", "dev", "lo"))
    print(json.dumps({"rc": rc, "seconds": round(seconds, 1), "rows_at_fault": at_fault, "rows": rows(args.metrics),
                      "hung": hung, "left": left, "dropped": int(dropped.group(1)) if dropped else 0}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
