"""The benchmark against the peers, small: real ranks under mpirun, a few steps, its table and plots.

The full benchmark (4.9M parameters, limited bandwidth, 2 and 4 ranks) is
``bash launch/bench_compare.sh``; these runs only check that every part works and that its
figures are the exact ones (bits) and sane ones (accuracy, times).
"""
import json
import os
import sys

import pytest
from conftest import run_command

pytestmark = pytest.mark.timeout(900)

D = 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10  # digits_mlp(hidden=128)
STEPS = 44  # 2 epochs of 1437 training images, 2 ranks, batch 32


def compare(tmp_path, *flags, timeout=800):
    out = tmp_path / "bench"
    run_command([sys.executable, "-m", "hvd_qsparse.bench.compare", "--ranks", "2", "--epochs", "2",
                 "--hidden", "128", "--ratio", "0.1", "--eval-every", "5", "--target", "0.6", "--out", str(out),
                 "--run-timeout", "400", *flags], timeout=timeout)
    return out, json.loads((out / "results.json").read_text())


def powersgd_elements_per_step(rank=4):
    """What PyTorch's PowerSGD hook allreduces per step for digits_mlp(128): P and Q of every
    weight worth compressing ((n + m)·r·2 < n·m), the other tensors whole."""
    total = 0
    for n, m in ((128, 64), (64, 128), (10, 64)):
        r = min(n, m, rank)
        total += (n + m) * r if 2 * (n + m) * r < n * m else n * m
    return total + 128 + 64 + 10


def test_smoke_table_plots_and_exact_bits(tmp_path):
    out, results = compare(tmp_path, "--bandwidths", "none",
                           "--variants", "hvd-fp32,ddp,ddp-powersgd,qsparse-topk+sign-H4,qsparse-topk+sign-H4-torch")
    rows = {r["name"]: r for r in results["none-np2"]["rows"]}
    assert list(rows) == ["hvd-fp32", "ddp", "ddp-powersgd", "qsparse-topk+sign-H4", "qsparse-topk+sign-H4-torch"]
    assert all(r["error"] is None and r["steps"] == STEPS and r["epochs"] == 2 for r in rows.values())
    dense, ddp, power, ours, ours_torch = (rows[n] for n in rows)
    # The torch.distributed path under torchrun trains and counts exactly as the Horovod path.
    assert (ours_torch["bits"], ours_torch["score"]) == (ours["bits"], ours["score"])
    # Exact bits: dense fp32 per step from both peers; PowerSGD dense for its 2 warm-up steps.
    assert dense["bits"] == ddp["bits"] == 32 * D * STEPS and dense["reduction"] == 1.0
    assert power["bits"] == 32 * (2 * D + (STEPS - 2) * powersgd_elements_per_step())
    assert ours["reduction"] > 10
    # Same task, split, seeds and model: Horovod and DDP train the same dense SGD.
    assert dense["score"] > 0.85 and abs(dense["score"] - ddp["score"]) <= 0.01
    assert power["score"] >= dense["score"] - 0.05 and ours["score"] >= dense["score"] - 0.1
    for r in rows.values():
        assert 0 < r["compress_s"] + r["communicate_s"] <= r["train_s"] <= r["wall_s"]
        assert r["target_step"] is not None and 0 < r["target_s"] <= r["train_s"] and r["target_step"] <= STEPS
        assert 0 < r["target_bits"] <= r["bits"]
    text = (out / "results.md").read_text()
    assert "## none · 2 ranks" in text and "Targets:" in text and "python -m hvd_qsparse.bench.compare" in text
    for name in rows:
        assert f"| {name} | " in text
    for png in ("accuracy_vs_bits.png", "accuracy_vs_time.png"):
        data = (out / "none-np2" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace and tc need root")
def test_limited_runs_go_through_the_shaper(tmp_path):
    _, results = compare(tmp_path, "--bandwidths", "20mbit", "--variants", "hvd-fp32,ddp")
    setting = results["20mbit-np2"]
    assert "rate 20Mbit" in setting["network"] and all(r["error"] is None for r in setting["rows"])
    # Both ranks' payloads crossed the shaped loopback (TCP headers and control traffic come on top).
    payload_bytes = sum(2 * r["bits"] // 8 for r in setting["rows"])
    assert setting["shaped_bytes"] >= payload_bytes
    assert not [ns for ns in os.popen("ip netns list").read().split() if ns.startswith("hvdq-")]


def test_bad_flags_and_no_root_say_what_to_do(tmp_path):
    for flags, needle in ((["--bandwidths", "1zbit"], "--bandwidths"), (["--ranks", "two"], "--ranks"),
                          (["--variants", "nope"], "--variants"), (["--target", "95"], "--target"),
                          (["--ratio", "0"], "--ratio")):
        out = run_command([sys.executable, "-m", "hvd_qsparse.bench.compare", *flags], expect_rc=2, timeout=120)
        assert needle in out, (flags, out)
    # In a new user namespace this process is an unprivileged user (and `ip netns add` fails there).
    if os.system("unshare --user true 2>/dev/null") != 0:
        pytest.skip("unshare --user is not allowed here")
    out = run_command(["unshare", "--user", sys.executable, "-m", "hvd_qsparse.bench.compare", "--bandwidths", "1gbit",
                       "--out", str(tmp_path / "x")], expect_rc=2, timeout=120)
    assert "needs root" in out and "--bandwidths none" in out
