"""Smoke run of the kernel benchmark: it prints a row per (device, size, ratio) with all columns."""
from hvd_qsparse.bench import kernels


def test_bench_prints_rows_for_every_size_and_ratio(capsys):
    kernels.main(["--sizes", "300K,1000", "--ratios", "0.1,0.01", "--repeats", "1", "--threads", "1",
                  "--devices", "cpu"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cpu ")]
    assert len(rows) == 4
    assert all(line.endswith("torch-cpu-fast") for line in rows)
    assert all(line.count("%") == 3 for line in rows)


def test_parse_size():
    assert kernels.parse_size("25M") == 25_000_000
    assert kernels.parse_size("1k") == 1024
    assert kernels.parse_size("1048576") == 1048576
