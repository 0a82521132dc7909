"""``--metrics`` rows reach the disk as they are written: a run killed mid-way keeps them all."""
import json

import pytest

from hvd_qsparse.reporting.metrics import MetricsLog


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_every_row_is_on_disk_before_close(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    log = MetricsLog(str(path), meta={"label": "x"})
    for step in range(3):
        log.log({"step": step, "loss": 1.0 / (step + 1)})
        lines = path.read_text().strip().splitlines()
        rows = lines[1:]  # the meta line (jsonl) or the header (csv) first
        assert len(rows) == step + 1, lines
    if suffix == ".jsonl":
        assert json.loads(rows[-1])["step"] == 2
    log.close()
