"""The training job on digits: compressed local SGD against dense synchronous SGD."""
import json
import sys

import pytest

from conftest import WORKERS, mpirun_command, run_command

pytestmark = pytest.mark.timeout(400)


def run_job(tmp_path, *flags):
    out = tmp_path / "summary.json"
    run_command(mpirun_command(2, [sys.executable, "-m", "hvd_qsparse.jobs.train", "--no-progress",
                                   "--epochs", "20", "--json", str(out), *flags]))
    return json.loads(out.read_text())


def test_topk_sign_h4_close_to_dense_with_100x_fewer_bits(tmp_path):
    dense = run_job(tmp_path, "--compressor", "none", "--local-steps", "1")
    sparse = run_job(tmp_path, "--compressor", "topk+sign", "--local-steps", "4", "--ratio", "0.05")
    print(f"dense acc {dense['test_accuracy']:.4f} bits {dense['bits_per_rank']}; "
          f"topk+sign H=4 acc {sparse['test_accuracy']:.4f} bits {sparse['bits_per_rank']}")
    assert dense["test_accuracy"] > 0.9
    assert sparse["test_accuracy"] >= dense["test_accuracy"] - 0.02
    assert max(dense["bits_per_rank"]) >= 100 * max(sparse["bits_per_rank"])
    assert sparse["reduction"] >= 100


def test_bad_flags_rejected_before_training(tmp_path):
    for flags, needle in ((["--ratio", "0"], "ratio"), (["--ratio", "1.5"], "ratio"),
                          (["--levels", "0"], "levels"), (["--local-steps", "0"], "--local-steps"),
                          (["--compressor", "nope"], "invalid choice")):
        out = run_command([sys.executable, "-m", "hvd_qsparse.jobs.train", *flags], expect_rc=2, timeout=60)
        assert needle in out, (flags, out)


def test_bits_log_has_every_rank_and_step(tmp_path):
    log = tmp_path / "bits.jsonl"
    summary = run_job(tmp_path, "--epochs", "1", "--local-steps", "2", "--bits-log", str(log))
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["rank"] for r in rows} == {0, 1}
    for rank in (0, 1):
        mine = [r for r in rows if r["rank"] == rank]
        assert [r["step"] for r in mine] == list(range(1, summary["steps"], 2))  # sync after odd steps
        assert sum(r["sent"] for r in mine) == summary["bits_per_rank"][rank]


def test_one_failing_rank_ends_the_job_instead_of_hanging():
    out = run_command(mpirun_command(2, [sys.executable, str(WORKERS / "failing_rank.py")]), expect_rc=1,
                      timeout=120)
    assert "rank 1 of 2 failed; ending the job" in out and "rank 1 fails on purpose" in out


def test_redundancy_above_the_number_of_workers_is_refused_before_training():
    out = run_command(mpirun_command(2, [sys.executable, "-m", "hvd_qsparse.jobs.train", "--no-progress",
                                         "--algorithm", "risgd", "--redundancy", "3"]), expect_rc=1, timeout=120)
    assert "redundancy must be an integer in [1, 2]" in out and "test acc" not in out
