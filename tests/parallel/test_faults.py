"""Faults under every algorithm: when rank 1 raises or is killed mid-training, the others stop
within a bounded time, the launcher exits non-zero and the output names the failing rank.
Each case adds a row to the fault table printed at the end of the run (``conftest.record_fault``)."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, WORKERS, launch_env, mpirun_command, record_fault

pytestmark = pytest.mark.timeout(200)

#: seconds within which every rank must be gone (the job takes ~5 s without a fault)
BOUND = 60
SETTINGS = {
    "qsparse H=1": ["qsparse", "--local-steps", "1"],
    "qsparse H=8": ["qsparse", "--local-steps", "8"],
    "doublesqueeze": ["doublesqueeze", "--compressor", "sign"],
    "gdsec": ["gdsec"],
    "qsparse-async": ["qsparse-async", "--local-steps", "4"],
    "risgd": ["risgd", "--local-steps", "4", "--redundancy", "2"],
}

def run_fault(setting: str, fault: str):
    algorithm, *flags = SETTINGS[setting]
    cmd = mpirun_command(2, [sys.executable, str(WORKERS / "fault_at_step.py"), algorithm, fault, "7", *flags])
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=launch_env(),
                          cwd=str(ROOT), timeout=BOUND + 60, start_new_session=True)
    return proc.returncode, time.monotonic() - start, proc.stdout


@pytest.mark.parametrize("fault", ["raise", "kill"])
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_a_failing_rank_ends_the_job(setting, fault):
    rc, seconds, out = run_fault(setting, fault)
    named = ("rank 1 of 2 failed" in out) if fault == "raise" else ("signal 9" in out or "Killed" in out)
    ok = rc != 0 and seconds < BOUND and named and "rank 1: injecting" in out
    record_fault(f"{setting}, rank 1 {fault}s at step 7", f"exit != 0 within {BOUND}s, rank named", rc, seconds, ok)
    assert rc != 0, out[-3000:]
    assert seconds < BOUND, f"the job took {seconds:.0f}s to end"
    assert named, f"the output does not name the failing rank:\n{out[-3000:]}"


@pytest.mark.parametrize("progress", ["thread", "none"])
def test_an_uncaught_error_under_qsparse_async_crashes_no_rank(progress):
    cmd = mpirun_command(2, [sys.executable, str(WORKERS / "async_uncaught.py"), progress])
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=launch_env(),
                          cwd=str(ROOT), timeout=BOUND + 60, start_new_session=True)
    seconds, out = time.monotonic() - start, proc.stdout
    ok = proc.returncode == 1 and "Segmentation fault" not in out and "holds NaN or Inf" in out
    record_fault(f"qsparse-async ({progress}), rank 1 raises NaN error uncaught", "exit 1, no segfault",
                 proc.returncode, seconds, ok)
    assert "holds NaN or Inf" in out, out[-3000:]
    assert "Segmentation fault" not in out and "signal 11" not in out, out[-3000:]
    assert proc.returncode == 1 and seconds < BOUND, (proc.returncode, seconds)


@pytest.mark.parametrize("launcher", ["mpirun", "horovodrun"])
def test_a_stalled_job_ends_with_a_timeout(launcher):
    """Rank 1 stops making progress (it sleeps, as behind a dead link): the step watchdog ends
    the job within --step-timeout plus start-up, with a message, instead of a hang."""
    job = [sys.executable, "-m", "hvd_qsparse.jobs.train", "--no-progress", "--epochs", "2", "--step-timeout", "5",
           "--straggler-rank", "1", "--straggler-sleep", "120"]
    cmd = mpirun_command(2, job) if launcher == "mpirun" else \
        [str(Path(sys.executable).parent / "horovodrun"), "-np", "2", "--mpi-args=--oversubscribe", *job]
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=launch_env(),
                          cwd=str(ROOT), timeout=BOUND + 60, start_new_session=True)
    seconds, out = time.monotonic() - start, proc.stdout
    named = "no training step finished for" in out and "--step-timeout 5" in out
    record_fault(f"{launcher}: rank 1 stalls", "exit != 0 within 60 s, timeout message", proc.returncode, seconds,
                 proc.returncode != 0 and named and seconds < BOUND)
    assert proc.returncode != 0 and named, out[-3000:]
    assert seconds < BOUND, f"the stalled job took {seconds:.0f}s to end"
