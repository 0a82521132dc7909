"""What a run shows: per-step metrics (JSON lines, CSV, TensorBoard), plots of several runs, and
Horovod's timeline still working beside our collectives."""
import json
import sys

import pytest

from conftest import mpirun_command, run_command
from hvd_qsparse.reporting.metrics import read_metrics
from hvd_qsparse.reporting.plot import plot

pytestmark = pytest.mark.timeout(400)


def job(tmp_path, name, *flags):
    summary = tmp_path / f"{name}.summary.json"
    run_command(mpirun_command(2, [sys.executable, "-m", "hvd_qsparse.jobs.train", "--no-progress", "--epochs", "2",
                                   "--json", str(summary), *flags]))
    return json.loads(summary.read_text())


def test_metrics_rows_match_the_summary_and_plot(tmp_path):
    dense = job(tmp_path, "dense", "--compressor", "none", "--local-steps", "1",
                "--metrics", str(tmp_path / "dense.jsonl"))
    sparse = job(tmp_path, "sparse", "--metrics", str(tmp_path / "sparse.csv"), "--eval-every", "5",
                 "--tensorboard", str(tmp_path / "tb"))
    for path, summary, evals in ((tmp_path / "dense.jsonl", dense, 2), (tmp_path / "sparse.csv", sparse, 8)):
        _, rows = read_metrics(str(path))
        assert [r["step"] for r in rows] == list(range(summary["steps"]))
        assert sum(r["bits"] for r in rows) == rows[-1]["bits_total"] == summary["bits_per_rank"][0]
        evaluated = [r for r in rows if r.get("test_accuracy") is not None]
        assert len(evaluated) == evals and all(len(r["bits_per_rank"]) == 2 for r in evaluated)
        assert all(r["step_s"] >= r["compress_s"] + r["communicate_s"] for r in rows)
        assert all(r["wall_s"] > 0 for r in rows)
    _, sparse_rows = read_metrics(str(tmp_path / "sparse.csv"))
    assert [r["bits"] > 0 for r in sparse_rows] == [(s + 1) % 4 == 0 for s in range(sparse["steps"])]
    assert any((tmp_path / "tb").glob("events.out.tfevents.*"))
    meta, _ = read_metrics(str(tmp_path / "dense.jsonl"))
    assert meta["label"] == "qsparse none H=1 exchange=auto fusion=bucket"  # the summary's setting line
    for png in plot([str(tmp_path / "dense.jsonl"), str(tmp_path / "sparse.csv")], str(tmp_path / "plots"),
                    ymin=50, target=95):
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_horovod_timeline_records_our_collectives(tmp_path, monkeypatch):
    timeline = tmp_path / "timeline.json"
    monkeypatch.setenv("HOROVOD_TIMELINE", str(timeline))
    job(tmp_path, "timeline", "--epochs", "1")
    text = timeline.read_text()
    assert "qsparse.sync" in text and "ALLGATHER" in text
