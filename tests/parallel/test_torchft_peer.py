"""The ``torchft-diloco`` peer (torchft's own DiLoCo) on 2 real ranks: it exits, its replicas agree
after the last outer step, and its bits are exactly DiLoCo's fp32 pseudo-gradient allreduces."""
import json
import sys

import pytest
from conftest import mpirun_command, run_command

from hvd_qsparse.bench.runner import free_port

pytest.importorskip("torchft")

pytestmark = pytest.mark.timeout(180)

D = 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10  # digits_mlp(hidden=128)
STEPS = 11  # 1 epoch of 1437 training images, 2 ranks, batch 64
H = 4


def test_diloco_syncs_agree_and_counts_exact_bits(tmp_path, monkeypatch):
    # As the benchmark's runner does for the DDP peers: meet on 127.0.0.1, Gloo on lo.
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    summary, bits_log = tmp_path / "s.json", tmp_path / "bits.jsonl"
    out = run_command(mpirun_command(2, [sys.executable, "-m", "hvd_qsparse.bench.peers", "--peer", "torchft-diloco",
                                         "--model", "mlp", "--hidden", "128", "--epochs", "1", "--batch-size", "64",
                                         "--local-steps", str(H), "--json", str(summary),
                                         "--bits-log", str(bits_log)]), timeout=150)
    s = json.loads(summary.read_text())
    syncs = STEPS // H  # the last 3 steps drift; the summary scores the last outer step's model
    assert s["steps"] == STEPS and s["parameters"] == D and s["ranks"] == 2
    assert s["parameters_agree"] is True and s["score_spread"] == 0.0
    assert s["bits_per_rank"] == [32 * D * syncs] * 2 and s["communication_rounds"] == syncs
    rows = [json.loads(line) for line in bits_log.read_text().splitlines()]
    # Each rank sends one fp32 outer step's pseudo-gradient at steps H-1, 2H-1 (0-based).
    assert sorted((r["rank"], r["step"], r["sent"]) for r in rows) == sorted(
        (rank, k * H - 1, 32 * D) for rank in (0, 1) for k in range(1, syncs + 1))
    assert s["test_accuracy"] > 0.3 and "torchft diloco H=4" in out
