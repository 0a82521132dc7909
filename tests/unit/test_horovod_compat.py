"""Stock Horovod compatibility, single process (hvd.init() needs no mpirun for size 1)."""
import horovod.torch as hvd  # an install requirement: fail loudly (no skip) if broken
import pytest
import torch
from horovod.torch.compression import Compressor as HorovodCompressor

from hvd_qsparse.compression import create

from ._helpers import ALL_NAMES, make, randn


@pytest.fixture(scope="module")
def horovod():
    hvd.init()
    assert hvd.size() == 1 and hvd.rank() == 0
    # No hvd.shutdown(): it finalizes MPI, which cannot start again in this process, so a
    # later module's hvd.init() would abort the whole test run. Exit finalizes it.
    return hvd


@pytest.mark.parametrize("name", ALL_NAMES)
def test_compressors_subclass_horovod_interface(name):
    comp = make(name)
    assert isinstance(comp, HorovodCompressor)
    assert issubclass(type(comp), HorovodCompressor)


def test_none_and_fp16_are_horovod_compressors():
    for name in ("none", "fp16"):
        assert issubclass(type(create(name)), HorovodCompressor)
        assert create(name).summable


@pytest.mark.parametrize("name", ["none", "fp16"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16], ids=str)
def test_allreduce_with_our_compression(horovod, name, dtype):
    x = randn(4, 6, seed=1, dtype=dtype)
    out = horovod.allreduce(x, compression=create(name), name=f"t.{name}.{dtype}")
    assert out.shape == x.shape and out.dtype == dtype
    if name == "fp16":
        assert torch.allclose(out.double(), x.double(), rtol=2**-10, atol=1e-6)
    elif dtype == torch.float64:
        assert torch.equal(out, x.float().double())
    else:
        assert torch.equal(out, x)
    summed = horovod.allreduce(x, compression=create(name), op=horovod.Sum, name=f"s.{name}.{dtype}")
    assert torch.allclose(summed.double(), x.double(), rtol=2**-10, atol=1e-6)


@pytest.mark.parametrize("name", ["topk+sign", "randk+qsgd", "topk"])
def test_allgather_of_sparse_payload_decodes(horovod, name):
    comp = make(name, ratio=0.1, levels=8)
    x = randn(500, seed=2)
    payload, ctx = comp.compress(x, seed=3)
    gathered = horovod.allgather(payload, name=f"g.{name}")
    assert torch.equal(gathered, payload)  # one rank: the allgather is the payload itself
    n = comp.payload_nbytes(500)
    payloads = [gathered[r * n:(r + 1) * n] for r in range(horovod.size())]
    assert torch.equal(comp.decompress_sum(payloads, ctx), comp.decompress(payload, ctx))


def test_stock_distributed_optimizer_with_fp16(horovod):
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    reference = torch.nn.Linear(5, 3)
    reference.load_state_dict(model.state_dict())
    initial = [p.detach().clone() for p in model.parameters()]
    opt = horovod.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1),
                                       named_parameters=model.named_parameters(),
                                       compression=create("fp16"))
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    data = randn(8, 5, seed=4)
    for m, o in ((model, opt), (reference, ref_opt)):
        o.zero_grad()
        m(data).pow(2).sum().backward()
        o.step()
    for p, q, p0 in zip(model.parameters(), reference.parameters(), initial):
        assert not torch.equal(p.detach(), p0)  # the step did move the parameters
        assert torch.allclose(p, q, rtol=1e-3, atol=1e-3)
