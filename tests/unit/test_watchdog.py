"""The step watchdog's three bounds, each in a real process it may end (it calls ``os._exit``)."""
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)


def run(body: str) -> subprocess.CompletedProcess:
    script = "import time\nfrom hvd_qsparse.jobs.watchdog import StepWatchdog\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=30)


def test_a_slow_start_up_is_not_a_stalled_step():
    """Start-up longer than --step-timeout but inside --startup-timeout trains on."""
    proc = run("""
        dog = StepWatchdog(0.5, 0, 2, startup=4).start()
        time.sleep(2)
        dog.beat()
        print("trained", flush=True)
        dog.stop()
    """)
    assert proc.returncode == 0 and "trained" in proc.stdout, proc.stdout


def test_after_the_first_step_the_step_bound_applies():
    proc = run("""
        dog = StepWatchdog(0.5, 1, 2, startup=30).start()
        dog.beat()
        time.sleep(5)
        print("not ended", flush=True)
    """)
    assert proc.returncode == 1 and "not ended" not in proc.stdout, proc.stdout
    assert "rank 1 of 2: no training step finished" in proc.stdout and "(--step-timeout 0.5) after 1 steps" in proc.stdout


def test_a_start_up_past_its_bound_ends_the_process_and_names_the_flag():
    proc = run("""
        StepWatchdog(0.5, 0, 2, startup=1.5).start()
        time.sleep(6)
        print("not ended", flush=True)
    """)
    assert proc.returncode == 1 and "not ended" not in proc.stdout, proc.stdout
    assert "start-up" in proc.stdout and "(--startup-timeout 1.5) after 0 steps" in proc.stdout


def test_a_start_up_bound_below_the_step_bound_never_makes_it_stricter():
    proc = run("""
        dog = StepWatchdog(3, 0, 2, startup=0.5).start()
        time.sleep(1.5)
        dog.beat()
        print("trained", flush=True)
        dog.stop()
    """)
    assert proc.returncode == 0 and "trained" in proc.stdout, proc.stdout


def test_the_shutdown_is_bounded_by_the_step_timeout():
    proc = run("""
        dog = StepWatchdog(0.5, 0, 2, startup=30).start()
        dog.finish(lambda: time.sleep(5))
        print("not ended", flush=True)
    """)
    assert proc.returncode == 1 and "shutting down" in proc.stdout and "(--step-timeout 0.5)" in proc.stdout
