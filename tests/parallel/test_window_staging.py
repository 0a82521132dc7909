"""The window's staging path (how GPU tensors reach MPI), under real ranks on CPU tensors."""
import sys

import pytest
from conftest import WORKERS, mpirun_command, run_command

pytestmark = pytest.mark.timeout(600)


def test_staged_concurrent_pushes_lose_nothing():
    cmd = mpirun_command(3, [sys.executable, str(WORKERS / "window_staging.py"), "2", "60"])
    out = run_command(cmd, timeout=300)
    assert out.count(": OK staged 2 rounds") == 3
