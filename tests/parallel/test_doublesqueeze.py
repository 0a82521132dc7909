"""DoubleSqueeze under real ranks: exactness, invariants, layouts, resume, traffic, training."""
import json
import re
import sys

import pytest
from conftest import mpirun_command, run_command, run_ranks

from hvd_qsparse.comm import shard_sizes
from hvd_qsparse.compression import create

pytestmark = pytest.mark.timeout(600)


def test_identity_compressor_is_synchronous_sgd(ranks):
    assert ranks("doublesqueeze_identity.py", np=2, timeout=300).count(": OK") == 2


@pytest.mark.parametrize("np", [2, 4])
def test_both_passes_lose_nothing_and_layouts_agree(ranks, np):
    assert ranks("doublesqueeze_invariants.py", np=np, args=(np,), timeout=300).count(": OK") == np


@pytest.mark.parametrize("compressor,layout,server_ratio,scope", [
    ("sign", "sharded", None, "flat"), ("topk+qsgd", "ps", None, "flat"), ("topk+bsign", "sharded", None, "tensor"),
    ("topk", "sharded", 0.5, "flat")])
def test_resume_continues_exactly(ranks, tmp_path, compressor, layout, server_ratio, scope):
    args = (compressor, layout, tmp_path, server_ratio or "none", scope)
    assert ranks("doublesqueeze_resume.py", np=2, args=args, timeout=300).count(": OK") == 2


def traffic(np):
    """{layout: (max bytes a rank hands over, max bytes a rank receives)} for one step."""
    rows = [json.loads(m) for m in re.findall(r"\{[^{}]*\}", run_ranks("doublesqueeze_traffic.py", np=np,
                                                                         timeout=300))]
    assert len(rows) == 3 * np, rows
    return {layout: (max(r["sent"] for r in rows if r["layout"] == layout),
                     max(r["received"] for r in rows if r["layout"] == layout))
            for layout in ("sharded", "ps", "allgather")}


def test_sharded_traffic_flat_in_ranks_allgather_grows():
    two, four = traffic(2), traffic(4)
    print("\nper-rank bytes per step (sign, d = 65535; max over ranks): layout  R=2 sent/received  R=4 sent/received")
    for layout in two:
        print(f"  {layout:<9} {two[layout][0]:>6} / {two[layout][1]:>6}   {four[layout][0]:>6} / {four[layout][1]:>6}")
    total = {layout: (sum(two[layout]), sum(four[layout])) for layout in two}
    assert total["sharded"][1] <= 1.2 * total["sharded"][0]       # theory: 3 - 1/R times |Q(d)|: 2.5 -> 2.75
    assert total["allgather"][1] >= 1.9 * total["allgather"][0]   # R times |Q(d)|: 2 -> 4
    assert total["ps"][1] >= 1.5 * total["ps"][0]                 # rank 0 receives (R - 1)·|Q(d)|
    assert four["sharded"][1] <= 0.55 * four["allgather"][1]


def run_job(tmp_path, tag, *flags):
    out = tmp_path / f"{tag}.json"
    run_command(mpirun_command(2, [sys.executable, "-m", "hvd_qsparse.jobs.train", "--no-progress", "--epochs", "20",
                                   "--json", str(out), *flags]), timeout=500)
    return json.loads(out.read_text())


@pytest.mark.timeout(1200)  # three 20-epoch jobs on a shared 2-core machine
def test_sign_close_to_dense_and_server_memory_helps(tmp_path):
    dense = run_job(tmp_path, "dense", "--algorithm", "qsparse", "--compressor", "none", "--local-steps", "1")
    ds = run_job(tmp_path, "ds", "--algorithm", "doublesqueeze", "--compressor", "sign")
    no_mem = run_job(tmp_path, "nomem", "--algorithm", "doublesqueeze", "--compressor", "sign", "--no-server-memory")
    for tag, s in (("dense SGD", dense), ("doublesqueeze sign", ds), ("doublesqueeze sign, no server memory", no_mem)):
        print(f"{tag}: test acc {100 * s['test_accuracy']:.2f}%, bits/rank {max(s['bits_per_rank'])}, "
              f"{s['reduction']:.1f}x fewer than dense fp32")
    assert dense["test_accuracy"] > 0.9
    assert ds["test_accuracy"] >= dense["test_accuracy"] - 0.02
    assert no_mem["test_accuracy"] <= ds["test_accuracy"]
    shard_bytes = [create("sign").payload_nbytes(n) for n in shard_sizes(ds["parameters"], 2)]
    assert ds["bits_per_rank"] == [8 * ds["steps"] * (sum(shard_bytes) + mine) for mine in shard_bytes]


def test_bad_flags_rejected_before_training():
    for flags, needle in ((["--warmup-steps", "3"], "--warmup-steps"), (["--server-layout", "star"], "invalid choice")):
        out = run_command([sys.executable, "-m", "hvd_qsparse.jobs.train", "--algorithm", "doublesqueeze", *flags],
                          expect_rc=2, timeout=60)
        assert needle in out, (flags, out)
