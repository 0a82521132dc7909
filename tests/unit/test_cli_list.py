"""``python -m hvd_qsparse.cli list`` names every compressor with its bits and every algorithm."""
import subprocess
import sys

import pytest

from hvd_qsparse.algorithms import available_algorithms
from hvd_qsparse.cli.__main__ import main
from hvd_qsparse.compression import available

from ._helpers import REPO_ROOT, subprocess_env


def test_list_prints_every_compressor_and_algorithm(capsys):
    assert main(["list", "--ratio", "0.01", "--levels", "256"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ") and line.split()}
    for name in available():
        assert name in rows, name
    assert float(rows["topk+sign"][1]) == pytest.approx(0.01 * (20 + 1), abs=1e-4)  # k(log2 d + 1)/d
    assert float(rows["none"][1]) == 32.0
    for name in available_algorithms():
        assert name in rows, name


def test_module_entry_point_and_usage_error():
    ok = subprocess.run([sys.executable, "-m", "hvd_qsparse.cli", "list"], capture_output=True, text=True,
                        cwd=REPO_ROOT, env=subprocess_env(), timeout=120)
    assert ok.returncode == 0 and "topk+qsgd" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "hvd_qsparse.cli", "nope"], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=subprocess_env(), timeout=120)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
