"""The torch.distributed backend under torchrun (Gloo), with Horovod hidden: every algorithm
gives the parameters and bit counts of the Horovod backend under mpirun for the same seed and
batches, and a checkpoint resumes exactly."""
import sys

import pytest
import torch
from conftest import run_ranks

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "workers"))
from backend_parity import SETTINGS  # noqa: E402
from common import flat_params, make_model  # noqa: E402

ATOL = 1e-6


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("parity")
    run_ranks("backend_parity.py", 2, ["horovod", out / "horovod"], timeout=240)
    torch_output = run_ranks("backend_parity.py", 2, ["torch", out / "torch"], timeout=240, launcher="torchrun")
    assert "rank 0 (torch): OK" in torch_output and "rank 1 (torch): OK" in torch_output
    return {backend: [torch.load(out / f"{backend}.{rank}") for rank in range(2)] for backend in ("horovod", "torch")}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_torch_backend_matches_horovod(results, setting):
    start = flat_params(make_model())
    for rank in range(2):
        ours, horovod = results["torch"][rank][setting], results["horovod"][rank][setting]
        assert (horovod["params"] - start).abs().max() > 1e-3, "training did not move the parameters"
        diff = (ours["params"] - horovod["params"]).abs().max().item()
        assert diff <= ATOL, f"{setting}, rank {rank}: max |torch - horovod| = {diff}"
        assert (ours["sent"], ours["received"]) == (horovod["sent"], horovod["received"]), setting


@pytest.mark.timeout(600)
def test_torch_backend_resumes_exactly(results):
    for rank in range(2):
        assert torch.equal(results["torch"][rank]["resumed"], results["torch"][rank]["qsparse-topk+sign-H2"]["params"])


@pytest.mark.timeout(300)
def test_the_job_under_torchrun_trains_as_under_mpirun(tmp_path):
    """``torchrun --nproc_per_node 2 -m hvd_qsparse.jobs.train`` is one 2-rank job (not two
    single-rank ones) and ends where the same job under mpirun ends."""
    import json

    from conftest import mpirun_command, run_command, torchrun_command
    flags = ["-m", "hvd_qsparse.jobs.train", "--no-progress", "--epochs", "2", "--compressor", "randk+qsgd",
             "--ratio", "0.1", "--levels", "16", "--exchange", "allgather"]  # auto's pick could differ by timing
    out = run_command(torchrun_command(2, [sys.executable, *flags, "--json", str(tmp_path / "torch.json")]))
    run_command(mpirun_command(2, [sys.executable, *flags, "--json", str(tmp_path / "horovod.json")]))
    assert "ranks=2" in out and "backend=torch" in out
    ours, horovod = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("torch", "horovod"))
    assert (ours["backend"], horovod["backend"]) == ("torch", "horovod")
    for key in ("ranks", "steps", "test_accuracy", "bits_per_rank", "received_bits_per_rank", "exchange"):
        assert ours[key] == horovod[key], key


@pytest.mark.timeout(300)
def test_ddp_hook_matches_plain_ddp_and_the_optimizer():
    """Under torchrun, Horovod hidden: the identity hook gives plain DDP's parameters, the
    top-k + sign hook DistributedOptimizer's (and its bits), a checkpoint of the hook state
    resumes exactly in a new DDP, and NaN on one rank is refused on both, memories untouched."""
    out = run_ranks("ddp_hook_parity.py", 2, launcher="torchrun", timeout=240)
    assert out.count(": OK") == 2


@pytest.mark.timeout(300)
def test_a_process_set_of_ranks_on_the_torch_backend():
    """3 ranks, ``process_set=[0, 2]``: the two run the algorithm and agree, rank 1 steps alone."""
    out = run_ranks("torch_process_group.py", 3, launcher="torchrun", timeout=240)
    assert out.count(": OK") == 3
