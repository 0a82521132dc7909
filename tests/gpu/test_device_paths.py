"""CUDA paths of the optimizer: the step timer's events, the state sent by ``broadcast_state``
and a checkpoint moving between a GPU and the CPU (skipped without a GPU; the same code's CPU
side is tested in ``tests/unit/test_device_placement.py`` and ``tests/unit/test_checkpoint.py``)."""
import pytest
import torch
from torch import nn

from hvd_qsparse.optim import StepTimer
from hvd_qsparse.optim.checkpoint import _tensors, tensor_digest
from hvd_qsparse.optim.state_format import optimizer_state_for_broadcast

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def test_timer_times_gpu_work_with_events():
    timer = StepTimer.for_parameters(nn.Linear(2, 2).cuda().parameters())
    assert timer.uses_events
    x = torch.randn(2048, 2048, device="cuda")
    with timer.phase("compress"):
        for _ in range(20):
            x = x @ x / 2048
    seconds = timer.pop()
    assert seconds["compress"] > 0
    assert timer.pop() == {}


def test_state_for_broadcast_of_a_cuda_optimizer_is_on_the_cpu():
    model = nn.Linear(3, 2).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(4, 3, device="cuda")).sum().backward()
    opt.step()
    sent = optimizer_state_for_broadcast(opt)
    assert {tensor.device.type for _, tensor in _tensors(sent, "")} == {"cpu"}
    assert tensor_digest(sent) == tensor_digest(opt.state_dict())


def test_checkpoint_written_on_cuda_loads_on_the_cpu(tmp_path):
    hvd = pytest.importorskip("horovod.torch")
    import hvd_qsparse
    from hvd_qsparse import load_checkpoint, save_checkpoint

    hvd.init()

    def build(device):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 2)).to(device)
        opt = hvd_qsparse.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                               model.named_parameters(), algorithm="qsparse",
                                               compressor="topk", ratio=0.5, local_steps=100)
        return model, opt

    gpu_model, gpu_opt = build("cuda")
    x = torch.randn(8, 5, device="cuda")
    for _ in range(3):  # local steps only: no Horovod operation on CUDA tensors
        gpu_opt.zero_grad()
        gpu_model(x).pow(2).mean().backward()
        gpu_opt.step()
    path = str(tmp_path / "ckpt.0")
    save_checkpoint(path, gpu_model, gpu_opt)
    cpu_model, cpu_opt = build("cpu")
    load_checkpoint(path, cpu_model, cpu_opt)
    state = cpu_opt.state_dict()
    assert {tensor.device.type for _, tensor in _tensors(state, "")} == {"cpu"}
    assert tensor_digest(state) == tensor_digest(gpu_opt.state_dict())
    for cpu_param, gpu_param in zip(cpu_model.parameters(), gpu_model.parameters()):
        assert torch.equal(cpu_param, gpu_param.cpu())
