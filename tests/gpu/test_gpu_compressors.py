"""CUDA tensors through the compressors give the CPU result (skipped without a GPU).

Compared bit for bit: the deterministic compressors and rand-k, whose indices come from the
counter-based draws (``ops.counter_random``) that every device computes alike; QSGD's rounding
noise is counter-based too, but its norm is a float64 sum whose order differs on a GPU
(``tests/gpu/test_kernels.py`` bounds that).
"""
import pytest
import torch

from hvd_qsparse.compression import create

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@pytest.mark.parametrize("name", ["none", "fp16", "sign", "topk", "topk+sign", "randk", "randk+sign"])
def test_deterministic_compressors_match_cpu(name):
    x = torch.randn(4099, generator=torch.Generator().manual_seed(0))
    comp = create(name, ratio=0.05)
    cpu_payload, ctx = comp.compress(x, seed=11)
    gpu_payload, gpu_ctx = comp.compress(x.cuda(), seed=11)
    assert gpu_payload.is_cuda
    assert torch.equal(cpu_payload, gpu_payload.cpu())
    assert torch.equal(comp.decompress(cpu_payload, ctx), comp.decompress(gpu_payload, gpu_ctx).cpu())
