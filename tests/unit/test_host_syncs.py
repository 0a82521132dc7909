"""Host synchronisations in the compress path: one per fused bucket per step, counted with a
``TorchFunctionMode`` (``ops.host_syncs``), so the count holds on a GPU without one here."""
import horovod.torch as hvd
import pytest
import torch

import hvd_qsparse
from hvd_qsparse.error_feedback import ErrorFeedback
from hvd_qsparse.ops.host_syncs import HostSyncCounter
from hvd_qsparse.workloads.cnn import mnist_resnet

from ._helpers import ALL_NAMES, make, randn


@pytest.fixture(scope="module")
def horovod():
    hvd.init()  # one rank; no hvd.shutdown(): MPI cannot start again in this process
    return hvd


def test_the_counter_sees_every_kind_of_read_back():
    x = randn(50)
    with HostSyncCounter() as counter:
        x.sum().item()
        bool(x.max() > 0)
        int(x.argmax())
        torch.nonzero(x > 0)
        x[x > 0]
        x.tolist()
    assert counter.total == 6, counter.calls


def cnn_gradients():
    model = mnist_resnet(width=4)
    torch.nn.functional.cross_entropy(model(randn(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3])).backward()
    return [(n, p.grad) for n, p in model.named_parameters()]


@pytest.mark.parametrize("ops", ["auto", "reference"])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_one_fused_bucket_costs_one_host_sync_for_every_compressor(name, ops, monkeypatch):
    monkeypatch.setenv("HVD_QSPARSE_OPS", ops)
    grads = cnn_gradients()
    flat = torch.cat([g.reshape(-1) for _, g in grads])
    memory = ErrorFeedback()
    for step in range(2):  # the first step has no memory yet, the second has one
        with HostSyncCounter() as counter:
            memory.compress_finite("bucket", flat, make(name, ratio=0.01), seed=step)
        assert counter.total == 1, (name, step, dict(counter.calls))


@pytest.mark.parametrize("fusion", ["bucket", "tensor"])
def test_a_real_step_syncs_once_per_bucket_not_per_tensor(horovod, fusion):
    model = mnist_resnet(width=4)
    opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01), model.named_parameters(),
                                           compressor="topk+sign", ratio=0.01, local_steps=1, fusion=fusion)
    tensors = len(list(model.parameters()))
    for step in range(2):
        counter = opt.pipeline.trace = HostSyncCounter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(randn(4, 1, 28, 28, seed=step)), torch.tensor([0, 1, 2, 3])).backward()
        opt.step()
        assert counter.total == (1 if fusion == "bucket" else tensors), dict(counter.calls)
