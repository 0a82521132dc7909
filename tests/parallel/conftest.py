"""Harness for tests that need real ranks: starts ``mpirun`` (or ``horovodrun``) with a timeout.

A worker script asserts on every rank and exits non-zero on failure; the harness fails the test
with the combined output when any rank fails, and kills the whole process group on timeout so
no rank is left hanging.
"""
import glob
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

WORKERS = Path(__file__).parent / "workers"
ROOT = Path(__file__).resolve().parents[2]


def launch_env() -> dict:
    """Environment for local ranks: root allowed, one thread per rank on a small machine."""
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}",
               HOROVOD_CYCLE_TIME="0.5")
    return env


def mpirun_command(np: int, argv) -> list:
    """``mpirun -np N`` for this machine (oversubscribed, no binding) running ``argv``."""
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.fail("mpirun not found: run `bash launch/setup.sh` (installs Debian's OpenMPI)")
    return [mpirun, "-np", str(np), "--oversubscribe", "--bind-to", "none", *argv]


def torchrun_command(np: int, argv) -> list:
    """``torchrun --standalone --nproc_per_node N`` (this venv's) running ``argv[1:]``."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(np), *argv[1:]]


def run_ranks(script: str, np: int = 2, args=(), timeout: float = 240, launcher: str = "mpirun") -> str:
    """Run ``tests/parallel/workers/<script>`` on ``np`` ranks under ``launcher`` (``mpirun``,
    ``horovodrun`` or ``torchrun``); return its output or fail the test."""
    argv = [sys.executable, str(WORKERS / script), *map(str, args)]
    if launcher == "horovodrun":
        cmd = [str(Path(sys.executable).parent / "horovodrun"), "-np", str(np), "--mpi-args=--oversubscribe", *argv]
    elif launcher == "torchrun":
        cmd = torchrun_command(np, argv)
    else:
        cmd = mpirun_command(np, argv)
    return run_command(cmd, timeout=timeout)


def run_command(cmd, expect_rc: int = 0, timeout: float = 240) -> str:
    """Run ``cmd`` in its own process group; fail the test on another exit code or a timeout."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=launch_env(), cwd=str(ROOT), start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(map(str, cmd))} timed out after {timeout}s; output:\n{out[-6000:]}")
    if proc.returncode != expect_rc:
        pytest.fail(f"{' '.join(map(str, cmd))} exited with {proc.returncode} (expected {expect_rc}); "
                    f"output:\n{out[-6000:]}")
    return out


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


def alive(pids) -> set:
    """The pids that are still running (not gone, not a zombie nobody has reaped)."""
    found = set()
    for pid in pids:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.add(pid)
    return found


@pytest.fixture
def ranks():
    """The ``run_ranks`` launcher as a fixture."""
    return run_ranks


#: rows of the fault table: (case, expected, exit code, seconds, result), printed after the run
FAULT_ROWS = []


def record_fault(case: str, expected: str, rc, seconds: float, ok: bool) -> None:
    """Add a row to the fault table that ends the test run's output."""
    FAULT_ROWS.append((case, expected, rc, f"{seconds:.1f}", "ok" if ok else "FAILED"))


def pytest_terminal_summary(terminalreporter):
    if FAULT_ROWS:
        terminalreporter.write_line("\nfault table\n| case | expected | exit code | seconds | result |\n|---|---|---|---|---|")
        for row in FAULT_ROWS:
            terminalreporter.write_line("| " + " | ".join(map(str, row)) + " |")
