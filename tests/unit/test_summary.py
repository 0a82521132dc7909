"""The closing summary's setting line and table: each algorithm shows the options it really uses."""
import argparse

import pytest

from hvd_qsparse.jobs import train
from hvd_qsparse.reporting.summary import describe_setting, format_table, run_setting


@pytest.mark.parametrize("argv, expected", [
    (["--algorithm", "qsparse", "--compressor", "topk+sign", "--ratio", "0.01", "--local-steps", "8"],
     "topk+sign(ratio=0.01) H=8 exchange="),
    (["--algorithm", "qsparse", "--compressor", "topk+qsgd", "--ratio", "0.01", "--levels", "16"],
     "topk+qsgd(ratio=0.01,levels=16) H=4"),
    (["--algorithm", "doublesqueeze", "--compressor", "sign"], "sign server_layout=sharded server_memory=True"),
    (["--algorithm", "gdsec", "--xi", "20"], "beta=1.0 xi=20.0"),
])
def test_setting_names_only_what_the_algorithm_uses(argv, expected):
    setting = run_setting(train.parse_args(argv))
    assert setting.startswith(expected), setting
    assert "seed" not in setting and "warmup" not in setting
    if "gdsec" in argv:
        assert "topk" not in setting and "H=" not in setting


def test_setting_shows_a_nonzero_warmup_and_drops_unset_values():
    assert describe_setting({"compressor": "sign", "ratio": 0.5, "levels": 4, "local_steps": 2,
                             "warmup_steps": 10, "num_chunks": None}) == "sign H=2 warmup_steps=10"


def test_a_named_setting_wins_and_the_table_shows_it():
    args = argparse.Namespace(setting="powersgd rank=4", options={"compressor": "none"})
    assert run_setting(args) == "powersgd rank=4"
    table = format_table({"algorithm": "ddp", "setting": "powersgd rank=4", "test_accuracy": 0.9721,
                          "bits_per_rank": [10, 12], "reduction": 37.7, "received_bits_per_rank": [30, 36],
                          "received_reduction": 4.25, "wall_time_s": 2.06})
    head, row = table.splitlines()
    assert head.split()[:3] == ["algorithm", "setting", "test"]
    assert "recv/rank" in head and "vs ring fp32" in head
    assert row.split() == ["ddp", "powersgd", "rank=4", "97.21%", "12", "37.7x", "36", "4.2x", "2.1s"]


def test_the_table_shows_no_ring_ratio_for_one_rank():
    table = format_table({"algorithm": "qsparse", "setting": "topk", "test_accuracy": 0.5, "bits_per_rank": [8],
                          "reduction": 2.0, "received_bits_per_rank": [0], "received_reduction": None,
                          "wall_time_s": 1.0})
    assert table.splitlines()[1].split()[-3:] == ["0", "-", "1.0s"]
