"""Which backend a wrapper gets, and the errors that name what is missing, in one process."""
import pytest

from hvd_qsparse.backend import BACKENDS, make_communicator, resolve_backend
from hvd_qsparse.jobs.world import TorchWorld, world_backend
from hvd_qsparse.optim.ddp_hook import CompressionHookState


def test_auto_without_any_initialised_world_is_horovod():
    assert resolve_backend("auto") == "horovod"
    assert resolve_backend("torch") == "torch"


def test_an_unknown_backend_is_refused_by_name():
    with pytest.raises(ValueError, match="backend must be one of auto, horovod, torch, got 'nccl'"):
        resolve_backend("nccl")
    assert BACKENDS == ("auto", "horovod", "torch")


def test_torch_backend_without_a_process_group_says_how_to_make_one():
    with pytest.raises(RuntimeError, match="torchrun and call torch.distributed.init_process_group"):
        make_communicator("torch")


def test_the_job_picks_torch_under_torchrun(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert world_backend("auto") == "horovod"
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    assert world_backend("auto") == "torch"
    assert world_backend("horovod") == "horovod"


def test_torch_world_outside_torchrun_says_how_to_launch(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(RuntimeError, match="launch with torchrun --nproc_per_node N"):
        TorchWorld().init()


@pytest.mark.parametrize("kwargs, match", [
    (dict(exchange="sharded"), "exchange='sharded' is not available to the DDP hook; accepted: auto, allgather"),
    (dict(start_iter=1), "start_iter"),
    (dict(compressor="nope"), "nope"),
])
def test_bad_hook_settings_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompressionHookState(**kwargs)
