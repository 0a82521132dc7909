"""A real network fault under every launcher, in a network namespace of its own (root needed).

The loopback is set down while the job trains (``workers/in_netns.py``). Where the ranks talk
through shared memory (``launch/mpirun.sh`` and ``launch/train.sh`` on one machine) training
goes on, but the launcher's bootstrap is TCP, so ``MPI_Finalize`` then waits for ever; where
they talk over TCP (Open MPI's TCP transport, Gloo) the next collective waits. Either way the
job must end, non-zero, with a message, within a bound: the step watchdog's ``--step-timeout``
or Gloo's own ``HOROVOD_GLOO_TIMEOUT_SECONDS``. A slow, lossy link (1 Mbit/s, drops) must still
finish. Each case adds a row to the fault table.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, WORKERS, launch_env, record_fault

pytestmark = pytest.mark.timeout(240)

#: seconds from the fault to the end of the job that a case may take
BOUND = 45
TCP = "--oversubscribe --bind-to none --mca btl self,tcp --mca btl_tcp_if_include lo"
JOB = ["--no-progress", "--epochs", "40"]
HOROVODRUN = str(Path(sys.executable).parent / "horovodrun")
#: case → (command, extra environment, what the output must say (or one of them), seconds before the fault at the latest)
CASES = {
    "launch/mpirun.sh (shared memory)": (["bash", "launch/mpirun.sh", *JOB, "--step-timeout", "5"], {},
                                          "(--step-timeout 5)", 120),
    "launch/mpirun.sh over TCP": (["bash", "launch/mpirun.sh", *JOB, "--step-timeout", "5"], {"MPI_ARGS": TCP},
                                  "(--step-timeout 5)", 120),
    "launch/train.sh (horovodrun)": (["bash", "launch/train.sh", *JOB, "--step-timeout", "5"], {},
                                     "(--step-timeout 5)", 120),
    "horovodrun --gloo, watchdog off": ([HOROVODRUN, "--gloo", "-np", "2", "--network-interface", "lo", sys.executable,
                                         "-m", "hvd_qsparse.jobs.train", *JOB, "--step-timeout", "0"],
                                        {"HOROVOD_GLOO_TIMEOUT_SECONDS": "10"}, "Timed out", 120),
    # The elastic job writes no --metrics rows: the fault comes 20 s in, after start-up on a quiet
    # machine; on a loaded one start-up may still run then, and its own bound ends the job.
    "launch/train_elastic.sh (3 workers)": (["bash", "launch/train_elastic.sh", "--no-progress", "--epochs", "200",
                                             "--step-timeout", "10", "--startup-timeout", "30"],
                                            {"NP": "3", "ELASTIC_TIMEOUT": "20"},
                                            ("(--step-timeout 10)", "(--startup-timeout 30)"), 20),
}


def namespaces_available() -> str:
    """Why this machine cannot run the cases, or '' when it can."""
    if not all(shutil.which(tool) for tool in ("unshare", "ip", "tc")):
        return "needs unshare, ip and tc (iproute2)"
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], stderr=subprocess.PIPE, text=True)
    return "" if probe.returncode == 0 else f"cannot make a network namespace here: {probe.stderr.strip()}"


@pytest.fixture(scope="module")
def netns():
    reason = namespaces_available()
    if reason:
        pytest.skip(reason)


def run_fault(fault: str, cmd, extra_env: dict, tmp_path, after: float = 120) -> tuple:
    metrics, log = tmp_path / "metrics.csv", tmp_path / "job.log"
    env = {**launch_env(), "NP": "2", **extra_env}
    for name in ("HOSTS", "HOSTFILE", *(() if "MPI_ARGS" in extra_env else ("MPI_ARGS",))):
        env.pop(name, None)
    driver = ["unshare", "-n", sys.executable, str(WORKERS / "in_netns.py"), "--fault", fault, "--bound", str(BOUND),
              "--after", str(after), "--metrics", str(metrics), "--log", str(log), "--", *cmd]
    if "launch/train_elastic.sh" not in cmd:  # the elastic job writes no rows
        driver += ["--metrics", str(metrics)]
    proc = subprocess.run(driver, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(ROOT),
                          timeout=BOUND + 150, start_new_session=True)
    out = log.read_text() if log.exists() else ""
    assert proc.returncode == 0, f"the driver failed:\n{proc.stdout[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), out


@pytest.mark.parametrize("case", list(CASES))
def test_a_dead_link_ends_the_job(netns, case, tmp_path):
    cmd, extra_env, says, after = CASES[case]
    result, out = run_fault("down", cmd, extra_env, tmp_path, after)
    said = any(message in out for message in ((says,) if isinstance(says, str) else says))
    ok = result["rc"] != 0 and not result["hung"] and not result["left"] and said
    record_fault(f"{case}: loopback down at row {result['rows_at_fault'] or '?'}",
                 f"exit != 0 within {BOUND} s, message, no rank left", result["rc"], result["seconds"], ok)
    assert not result["hung"], f"still running {BOUND} s after the link went down:\n{out[-3000:]}"
    assert result["rc"] != 0 and said, (result, out[-3000:])
    assert not result["left"], f"processes left running: {result['left']}"
    assert result["rows_at_fault"] > 0 or after < 120, "the fault came before training started"


def test_a_slow_lossy_link_still_finishes(netns, tmp_path):
    cmd = ["bash", "launch/mpirun.sh", "--no-progress", "--epochs", "5"]
    result, out = run_fault("slow", cmd, {"MPI_ARGS": TCP}, tmp_path)
    ok = result["rc"] == 0 and result["dropped"] > 0 and "test acc" in out
    record_fault(f"launch/mpirun.sh over TCP at 1 Mbit/s, {result['dropped']} packets dropped",
                 "finishes, exit 0", result["rc"], result["seconds"], ok)
    assert result["rc"] == 0 and "test acc" in out, (result, out[-3000:])
    assert result["dropped"] > 0, f"the shaper dropped nothing, so the link was not lossy: {result}"
    assert result["rows"] == 5 * 22, result
