"""The sbatch templates against a real single-node Slurm started by launch/slurm/cluster.sh.

Skipped, with the reason, where the cluster cannot start (not root, no apt, daemons down).
"""
import json
import subprocess

import pytest

from conftest import ROOT, run_command

pytestmark = pytest.mark.timeout(600)
CLUSTER = ROOT / "launch" / "slurm" / "cluster.sh"
SKIP = 77


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory):
    """SLURM_CONF of a freshly started cluster; stopped afterwards."""
    state = tmp_path_factory.mktemp("slurm")
    proc = subprocess.run(["bash", str(CLUSTER), "start", str(state)], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode == SKIP:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr
    yield proc.stdout.strip().split("=", 1)[1]
    subprocess.run(["bash", str(CLUSTER), "stop", str(state)], timeout=60)


@pytest.mark.parametrize("template", ["srun", "mpirun", "horovodrun", "torchrun"])
def test_template_trains_two_ranks(slurm_conf, template, tmp_path, monkeypatch):
    summary, output = tmp_path / "summary.json", tmp_path / "job.out"
    monkeypatch.setenv("SLURM_CONF", slurm_conf)
    run_command(["sbatch", "--wait", "--output", str(output), f"launch/slurm/{template}.sbatch",
                 "--epochs", "2", "--json", str(summary)], timeout=400)
    log = output.read_text()
    result = json.loads(summary.read_text())
    assert result["ranks"] == 2 and len(result["bits_per_rank"]) == 2, log
    assert all(bits > 0 for bits in result["bits_per_rank"]), log
    assert result["compressor"] == "topk+sign" and result["test_accuracy"] > 0.5, log
    assert "vs dense fp32" in log
    assert result["backend"] == ("torch" if template == "torchrun" else "horovod"), log


def test_variables_at_the_top_choose_the_compressor(slurm_conf, tmp_path, monkeypatch):
    summary, output = tmp_path / "summary.json", tmp_path / "job.out"
    monkeypatch.setenv("SLURM_CONF", slurm_conf)
    monkeypatch.setenv("COMPRESSOR", "randk+qsgd")
    monkeypatch.setenv("LOCAL_STEPS", "2")
    run_command(["sbatch", "--wait", "--output", str(output), "launch/slurm/mpirun.sbatch",
                 "--epochs", "1", "--json", str(summary)], timeout=400)
    result = json.loads(summary.read_text())
    assert (result["compressor"], result["local_steps"]) == ("randk+qsgd", 2), output.read_text()
