"""The sampled CPU top-k returns exactly the reference's set, whatever the input looks like."""
import pytest
import torch

from hvd_qsparse.ops import FAST_CPU, exact_topk_indices
from hvd_qsparse.ops import cpu_fast
from hvd_qsparse.ops.cpu_fast import MIN_NUMEL, sampled_topk_indices

D = MIN_NUMEL + 3


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _inputs():
    g = _gen()
    yield "normal", torch.randn(D, generator=g)
    yield "heavy tail", torch.randn(D, generator=g) ** 3
    yield "constant", torch.full((D,), -0.5)
    yield "all zero", torch.zeros(D)
    yield "few levels", torch.randint(-3, 4, (D,), generator=g).float()
    sparse = torch.zeros(D)
    sparse[torch.randperm(D, generator=g)[:50]] = torch.randn(50, generator=g)
    yield "mostly zero", sparse
    ramp = torch.arange(D, dtype=torch.float32).reshape(-1, 1).repeat(1, 4).reshape(-1)[:D]
    yield "sorted ramp", ramp
    yield "strided view", torch.randn(2 * D, generator=g)[::2]


@pytest.mark.parametrize("ratio", [0.1, 0.01, 0.001, 1e-5])
@pytest.mark.parametrize("name,x", list(_inputs()), ids=lambda v: v if isinstance(v, str) else "")
def test_same_set_as_reference(name, x, ratio):
    k = max(1, int(ratio * x.numel()))
    got = sampled_topk_indices(x, k)
    assert torch.equal(got, exact_topk_indices(x, k)), name
    assert torch.equal(FAST_CPU.topk_indices(x, k), got)


def test_ties_go_to_lowest_index():
    x = torch.zeros(D)
    x[::7] = 1.0
    k = 100
    assert torch.equal(sampled_topk_indices(x, k), torch.arange(0, 7 * k, 7))


@pytest.mark.parametrize("attempts", [1, cpu_fast.ATTEMPTS])
def test_exact_when_sample_misleads(monkeypatch, attempts):
    """The sample holds the largest values only, so the first threshold admits fewer than k
    candidates: the retries (or, with one attempt, the fallback) still return the exact set."""
    x = torch.zeros(D)
    x[:cpu_fast.SAMPLE] = torch.arange(cpu_fast.SAMPLE, 0, -1, dtype=torch.float32)
    x[cpu_fast.SAMPLE:] = torch.rand(D - cpu_fast.SAMPLE, generator=_gen(2))
    monkeypatch.setattr(cpu_fast, "_sample_positions", lambda d: torch.arange(cpu_fast.SAMPLE))
    monkeypatch.setattr(cpu_fast, "ATTEMPTS", attempts)
    k = 2000
    assert cpu_fast.sample_rank(D, k, 0) < k
    assert torch.equal(sampled_topk_indices(x, k), exact_topk_indices(x, k))


def test_small_and_cuda_tensors_use_reference_path():
    x = torch.randn(1000, generator=_gen(1))
    assert torch.equal(FAST_CPU.topk_indices(x, 10), exact_topk_indices(x, 10))
