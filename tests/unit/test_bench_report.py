"""The benchmark's arithmetic, in one process: time to target from metrics rows, the targets'
verdicts, the table, variant selection and rate parsing."""
import pytest

from hvd_qsparse.bench.netns import check_rate, rate_bits_per_s
from hvd_qsparse.bench.report import Row, time_to_target, check_targets, markdown_table
from hvd_qsparse.bench.variants import BASELINE, select


def metric_rows(accuracies, step_s=0.5, bits_per_step=100):
    """Metrics rows with an evaluation every 2 steps (accuracies[i] at step 2i + 1)."""
    rows = []
    for step in range(2 * len(accuracies)):
        row = {"step": step, "step_s": step_s}
        if step % 2 == 1:
            row.update(test_accuracy=accuracies[step // 2], bits_per_rank=[bits_per_step * (step + 1)] * 2)
        rows.append(row)
    return rows


def test_time_to_target_is_training_time_up_to_the_first_evaluation_at_target():
    row = Row("x", "ours", "qsparse")
    time_to_target(row, metric_rows([0.5, 0.94, 0.95, 0.97]), target=0.95)
    assert (row.target_step, row.target_s, row.target_bits) == (6, 3.0, 600)
    never = Row("y", "ours", "qsparse")
    time_to_target(never, metric_rows([0.5, 0.9]), target=0.95)
    assert never.target_s is None and never.target_step is None


def row(name, family, algorithm, accuracy, target_s, reduction=1.0):
    return Row(name, family, algorithm, score=accuracy, steps=10, epochs=1, bits=1000, reduction=reduction,
               wall_s=12.0, train_s=10.0, compress_s=1.0, communicate_s=2.0, target_s=target_s, target_step=5,
               target_bits=500)


def test_targets_say_met_or_by_how_much_they_are_missed():
    rows = [row(BASELINE, "peer", BASELINE, 0.97, 30.0), row("ddp-powersgd", "peer", "ddp-powersgd", 0.96, 8.0),
            row("ddp-postlocalsgd-H8", "peer", "ddp-postlocalsgd-H8", 0.96, None),
            row("qsparse-a", "ours", "qsparse", 0.955, 12.0, reduction=2000),
            row("qsparse-b", "ours", "qsparse", 0.90, 9.0, reduction=500),
            row("gdsec-xi10", "ours", "gdsec", 0.94, None)]
    lines = check_targets(rows)
    text = "\n".join(lines)
    # No setting keeps both the bits and the accuracy targets: the fastest one is judged.
    assert "first to the target among all settings: none has ≥ 1000× and 1 pt): qsparse-b" in text
    assert "met: 3.33× sooner than hvd-fp32" in text
    assert "MISSED by 500×: 500× fewer bits" in text
    assert "MISSED by 6.00 pt: test acc -7.00 pt from dense" in text
    assert "MISSED by 1.0 s: sooner than ddp-powersgd (9.0 s against 8.0 s)" in text
    assert "met: sooner than ddp-postlocalsgd-H8, which never reached the target" in text
    assert "met: qsparse at its best (qsparse-a) is -1.50 pt from dense" in text
    assert "MISSED by 1.00 pt: gdsec at its best (gdsec-xi10) is -3.00 pt" in text
    rows[3].score = 0.961                                   # qsparse-a now keeps both: it is judged
    assert "among ≥ 1000× fewer bits and within 1 pt): qsparse-a" in "\n".join(check_targets(rows))
    assert check_targets(rows[1:]) == [f"- not checked: {BASELINE} did not run or never reached the target"]


def test_table_has_one_line_per_run_and_the_speedup():
    rows = [row(BASELINE, "peer", BASELINE, 0.97, 30.0), row("qsparse-a", "ours", "qsparse", 0.965, 10.0, 2000),
            Row("broken", "ours", "risgd", error="exit code 1")]
    lines = markdown_table(rows, 0.95).splitlines()
    assert len(lines) == 5 and all(line.count("|") == lines[0].count("|") for line in lines)
    assert "| qsparse-a | 96.50% | -0.50 pt | 10 (1) |" in lines[3] and "| 3.00× |" in lines[3]
    assert "| 100.0 / 200.0 / 700.0 |" in lines[3]          # compress / comm / compute ms per step
    assert lines[4].startswith("| broken | failed: exit code 1 |")


def test_variant_selection_and_rates():
    assert [v.name for v in select("hvd-*,gdsec-xi20")] == ["hvd-fp32", "hvd-fp16", "gdsec-xi20"]
    assert {v.family for v in select("peers")} == {"peer"} and {v.family for v in select("ours")} == {"ours"}
    with pytest.raises(ValueError, match="--variants: 'nope' matches no variant"):
        select("nope")
    assert rate_bits_per_s(check_rate("100mbit")) == 1e8 and rate_bits_per_s("none") is None
    with pytest.raises(ValueError, match="--rate: '1 gbit' is not a rate"):
        check_rate("1 gbit")
