"""SIGINT or SIGTERM sent to a launch script's process alone (not its group) ends every rank.

``horovodrun`` execs ``/bin/sh -c mpirun ...``, which does not pass on a signal sent to it
alone; the launch scripts run the launcher in a session of their own and end that session
(``launch/env.sh``'s ``run_job``). After the signal no process of the job may be left, the
script must exit non-zero, every ``--metrics`` row written so far must be whole, and ``--json``
must be absent or valid. Each case adds a row to the fault table.
"""
import csv
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import ROOT, alive, children, launch_env, record_fault

pytestmark = pytest.mark.timeout(200)

#: seconds from the signal to the last process of the job gone
BOUND = 30
CASES = [("launch/mpirun.sh", "SIGINT"), ("launch/mpirun.sh", "SIGTERM"), ("launch/train.sh", "SIGINT"),
         ("launch/train.sh", "SIGTERM"), ("launch/train_elastic.sh", "SIGINT")]


def _default_sigint() -> None:
    """SIGINT as a terminal's Ctrl-C finds it. A test run started in the background (``cmd &``)
    inherits SIGINT ignored, and bash cannot trap a signal ignored when it started, so the launch
    script would never see it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def metric_rows(path) -> list:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def started(script: str, metrics, log) -> bool:
    if script == "launch/train_elastic.sh":  # it writes no rows: its log says when an epoch is done
        return log.exists() and "epoch 1 done" in log.read_text()
    return len(metric_rows(metrics)) >= 20


@pytest.mark.parametrize("script,signame", CASES)
def test_a_signal_to_the_launch_script_ends_every_rank(script, signame, tmp_path):
    metrics, summary, log = tmp_path / "m.csv", tmp_path / "summary.json", tmp_path / "job.log"
    flags = ["--epochs", "5000", "--json", str(summary)]  # far longer than BOUND
    if script != "launch/train_elastic.sh":
        flags += ["--no-progress", "--metrics", str(metrics)]
    env = dict(launch_env(), NP="3" if "elastic" in script else "2")
    for name in ("HOSTS", "HOSTFILE", "MPI_ARGS"):
        env.pop(name, None)
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", script, *flags], cwd=str(ROOT), env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_default_sigint)
    job = set()
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and not started(script, metrics, log) and time.monotonic() < deadline:
            job |= children(proc.pid)
            time.sleep(0.3)
        job |= children(proc.pid)
        assert proc.poll() is None, f"the job ended before the signal:\n{log.read_text()[-3000:]}"
        rows_at_signal = len(metric_rows(metrics))
        os.kill(proc.pid, getattr(signal, signame))
        sent = time.monotonic()
        try:
            rc = proc.wait(timeout=BOUND)
        except subprocess.TimeoutExpired:
            rc = None  # the launcher itself ignored the signal
        while alive(job) and time.monotonic() - sent < BOUND:
            time.sleep(0.2)
        seconds, left = time.monotonic() - sent, alive(job)
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
        for pid in alive(job):
            os.kill(pid, signal.SIGKILL)
    rows = metric_rows(metrics)
    whole = all(None not in row.values() and None not in row for row in rows)
    ok = rc not in (0, None) and not left and whole and len(rows) >= rows_at_signal
    record_fault(f"{signame} to {script} alone, mid-training", f"every rank gone within {BOUND} s, rows kept",
                 rc, seconds, ok)
    assert rc is not None, f"the launch script was still running {BOUND} s after {signame}"
    assert rc != 0, log.read_text()[-3000:]
    assert not left, f"processes left {seconds:.0f} s after {signame}: {sorted(left)}"
    assert whole and len(rows) >= rows_at_signal, f"{len(rows)} rows after the signal, {rows_at_signal} before"
    if summary.exists():
        json.loads(summary.read_text())
