"""CUDA tensors through the compressors give the CPU result (skipped without a GPU).

Only deterministic compressors are compared bit for bit: rand-k and QSGD draw from CUDA's
generator, whose stream differs from the CPU's by design.
"""
import pytest
import torch

from hvd_qsparse.compression import create

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@pytest.mark.parametrize("name", ["none", "fp16", "sign", "topk", "topk+sign"])
def test_deterministic_compressors_match_cpu(name):
    x = torch.randn(4099, generator=torch.Generator().manual_seed(0))
    comp = create(name, ratio=0.05)
    cpu_payload, ctx = comp.compress(x, seed=11)
    gpu_payload, gpu_ctx = comp.compress(x.cuda(), seed=11)
    assert gpu_payload.is_cuda
    assert torch.equal(cpu_payload, gpu_payload.cpu())
    assert torch.equal(comp.decompress(cpu_payload, ctx), comp.decompress(gpu_payload, gpu_ctx).cpu())
