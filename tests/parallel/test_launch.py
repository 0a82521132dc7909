"""The launch wrappers (horovodrun and mpirun) pass a host list through and train 2 ranks."""
import json

import pytest

from conftest import run_command

pytestmark = pytest.mark.timeout(400)


@pytest.mark.parametrize("script", ["train.sh", "mpirun.sh"])
def test_wrapper_with_host_list(script, tmp_path, monkeypatch):
    monkeypatch.setenv("HOSTS", "localhost:2")
    monkeypatch.setenv("NP", "2")
    out = tmp_path / "summary.json"
    log = run_command(["bash", f"launch/{script}", "--epochs", "1", "--no-progress", "--json", str(out)],
                      timeout=300)
    summary = json.loads(out.read_text())
    assert summary["ranks"] == 2 and len(summary["bits_per_rank"]) == 2, log
    assert "vs dense fp32" in log
