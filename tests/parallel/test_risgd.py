"""RI-SGD under real ranks: its special cases (mpirun), a worker killed with SIGKILL mid-training
(Horovod elastic over Gloo), and redundancy on a label-sorted split of digits."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT, launch_env, mpirun_command, run_command

pytestmark = pytest.mark.timeout(900)

HOROVODRUN = str(Path(sys.executable).parent / "horovodrun")
# q = 2 of p = 3 chunks, τ = 4, plain averaging: 12 epochs are 360 steps, 90 rounds.
ELASTIC_FLAGS = ["--compressor", "none", "--redundancy", "2", "--local-steps", "4", "--epochs", "12",
                 "--commit-every", "4", "--eval-every", "5", "--no-progress"]
ACCURACY_MARGIN = 0.03


def test_special_cases_and_data_placement(ranks):
    assert ranks("risgd_equivalence.py", np=3, timeout=300).count(": OK") == 3


def elastic_job(summary: Path, kill_slot=None, kill_after="round 45:", timeout=300):
    """Run the elastic job on 3 workers; with ``kill_slot``, SIGKILL that worker's process once
    ``kill_after`` shows in the log. Returns (output, summary, killed pid)."""
    cmd = [HOROVODRUN, "--gloo", "-np", "3", "--min-np", "2", "--max-np", "3", "--host-discovery-script",
           str(ROOT / "launch" / "discover_hosts.sh"), "--network-interfaces", "lo",
           sys.executable, "-m", "hvd_qsparse.jobs.train_elastic", *ELASTIC_FLAGS, "--json", str(summary)]
    env = dict(launch_env(), HOROVOD_GLOO_TIMEOUT_SECONDS="20")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=str(ROOT), start_new_session=True)
    timed_out = threading.Event()
    watchdog = threading.Timer(timeout, lambda: (timed_out.set(), os.killpg(proc.pid, signal.SIGKILL)))
    watchdog.start()
    lines, pids, killed = [], {}, None
    try:
        for line in proc.stdout:
            lines.append(line)
            found = re.search(r"slot (\d+): rank \d+ of \d+, pid (\d+)", line)
            if found:
                pids.setdefault(int(found.group(1)), int(found.group(2)))
            if kill_slot is not None and killed is None and kill_after in line:
                killed = pids[kill_slot]
                os.kill(killed, signal.SIGKILL)
                lines.append(f"TEST: killed slot {kill_slot} (pid {killed}) with SIGKILL\n")
        rc = proc.wait()
    finally:
        watchdog.cancel()
    out = "".join(lines)
    if timed_out.is_set():
        pytest.fail(f"elastic job timed out after {timeout}s:\n{out[-6000:]}")
    assert rc == 0, f"elastic job exited with {rc}:\n{out[-6000:]}"
    return out, json.loads(summary.read_text()), killed


def test_killed_worker_survivors_finish_close_to_undisturbed(tmp_path):
    _, full, _ = elastic_job(tmp_path / "full.json")
    out, hurt, killed = elastic_job(tmp_path / "hurt.json", kill_slot=1)
    print(f"undisturbed: acc {full['test_accuracy']:.4f} ranks {full['ranks']} rounds {full['rounds']}; "
          f"slot 1 killed: acc {hurt['test_accuracy']:.4f} ranks {hurt['ranks']} rounds {hurt['rounds']} "
          f"resets {hurt['resets']} memberships {hurt['memberships']}")
    assert killed is not None, f"the job never reached the kill point:\n{out[-4000:]}"
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)
    assert (full["ranks"], full["resets"]) == (3, 0)
    assert (hurt["ranks"], hurt["resets"]) == (2, 1)
    assert [m for _, m in hurt["memberships"]] == [[0, 1, 2], [0, 2]]
    assert hurt["steps"] == full["steps"] == 360, "the survivors must finish every epoch"
    assert "restored the last commit" in out and "reset #1" in out
    assert "chunk map: 2 workers, live slots [0, 2], lost slots [1]" in out
    assert "holders per chunk [2, 1, 1]" in out, "every chunk must still have a holder"
    assert abs(hurt["test_accuracy"] - full["test_accuracy"]) <= ACCURACY_MARGIN
    assert full["test_accuracy"] > 0.93


def rounds_to_target(tmp_path, redundancy, epochs, target=0.95):
    out = tmp_path / f"q{redundancy}.json"
    run_command(mpirun_command(4, [sys.executable, "-m", "hvd_qsparse.jobs.train_elastic", "--no-progress",
                                   "--compressor", "none", "--local-steps", "8", "--non-iid",
                                   "--redundancy", str(redundancy), "--epochs", str(epochs), "--eval-every", "1",
                                   "--target-accuracy", str(target), "--stop-at-target", "--json", str(out)]),
                timeout=300)
    return json.loads(out.read_text())


def test_non_iid_redundancy_reaches_target_in_fewer_rounds(tmp_path):
    # Same round budget (about 44): a q = 2 epoch is twice as long as a q = 1 epoch.
    q1, q2 = rounds_to_target(tmp_path, 1, 30), rounds_to_target(tmp_path, 2, 15)
    print(f"label-sorted digits, 4 workers, tau=8, target 95%: q=1 {q1['rounds_to_target']} rounds, "
          f"q=2 {q2['rounds_to_target']} rounds")
    assert q2["rounds_to_target"] is not None and q2["test_accuracy"] >= 0.95
    assert q1["rounds_to_target"] is None or q2["rounds_to_target"] < q1["rounds_to_target"]
