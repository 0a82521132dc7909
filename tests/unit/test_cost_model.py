"""The cost model (``comm.cost_model``), ``exchange=auto``'s choice, and the scaling
benchmark's calibration (``bench.scaling_model``) on rows the model itself generates."""
import pytest

from hvd_qsparse.bench.scaling_model import buckets, check, fit, predict_large
from hvd_qsparse.bench.scaling_report import growth_table, large_table
from hvd_qsparse.comm import Link, choose_exchange, predict, round_shape
from hvd_qsparse.comm.cost_model import received_bytes, round_time, sent_bytes
from hvd_qsparse.compression import create

TOPK = create("topk+sign", ratio=0.01)
LOOPBACK = Link(latency_s=1e-3, bytes_per_s=1e9, decode_s=1e-9)
CLUSTER = Link(latency_s=5e-6, bytes_per_s=1.25e9, decode_s=1e-10)


def test_received_bytes_grow_with_r_for_the_allgather_only():
    two, many = (round_shape(r, [1 << 20], TOPK) for r in (2, 64))
    assert received_bytes("allgather", many) == 63 * received_bytes("allgather", two)
    assert received_bytes("sharded", many) < 2.1 * received_bytes("sharded", two)
    assert received_bytes("dense", many) < 2 * received_bytes("dense", two)
    assert sent_bytes("allgather", many) == sent_bytes("allgather", two) == TOPK.payload_nbytes(1 << 20)


def test_auto_keeps_the_allgather_where_latency_rules_and_shards_where_bytes_do():
    assert choose_exchange(round_shape(4, [17226], TOPK), LOOPBACK) == "allgather"
    assert choose_exchange(round_shape(256, [1 << 22] * 6, TOPK), CLUSTER) == "sharded"
    fp32 = create("topk", ratio=0.5)  # payloads larger than d floats: the dense sum wins
    assert choose_exchange(round_shape(64, [1 << 22], fp32), CLUSTER) == "dense"


def test_sharded_must_win_by_the_margin():
    shape = round_shape(8, [1 << 22], TOPK)
    times = predict(shape, CLUSTER)
    picked = choose_exchange(shape, CLUSTER)
    if picked == "sharded":
        assert times["sharded"] * 1.5 < min(times["allgather"], times["dense"])
    else:
        assert picked == min(("allgather", "dense"), key=times.get)


def synthetic_rows(link):
    rows = []
    for ranks in (2, 4, 8, 16):
        for variant in ("allgather", "sharded", "dense"):
            shape = round_shape(ranks, [167178], TOPK)
            rows.append({"variant": variant, "ranks": ranks, "parameters": 167178, "steps": 40,
                         "sent_bytes_per_step": sent_bytes(variant, shape),
                         "received_bytes_per_step": received_bytes(variant, shape),
                         "communicate_s": round_time(variant, shape, link), "step_s": 0.05, "score": 0.9,
                         "metric": "test_accuracy"})
    return rows


def test_calibration_recovers_the_link_and_predicts_the_held_out_r():
    rows = synthetic_rows(LOOPBACK)
    link = fit(rows, TOPK)
    assert link.latency_s == pytest.approx(LOOPBACK.latency_s, rel=1e-3)
    assert link.bytes_per_s == pytest.approx(LOOPBACK.bytes_per_s, rel=1e-2)
    for c in check(rows, TOPK):
        assert c["ranks"] == 16 and c["predicted_s"] == pytest.approx(c["measured_s"], rel=1e-3)


def test_predictions_and_tables_at_large_r():
    large = predict_large(0.75, 1e-9, TOPK, fraction=0.05)
    assert {r["ranks"] for r in large} == {64, 128, 256, 512, 1024}
    at = {(r["model"], r["rate"], r["ranks"], r["variant"]): r for r in large}
    assert at[("1B", "10 Gbit/s", 1024, "allgather")]["received"] > 100 * at[("1B", "10 Gbit/s", 1024, "sharded")]["received"]
    assert buckets((1 << 22) * 2 + 5) == [1 << 22, 1 << 22, 5]
    assert "1024 |" in large_table(large, "25M", "100 Gbit/s")
    growth = growth_table(synthetic_rows(LOOPBACK))
    assert "| allgather |" in growth and "15.00×" in growth
