"""The CuPy kernels against the torch reference on a GPU (skipped without one; run by
``launch/gpu_check.sh``): the same selected sets and packed bytes, decoded values within float
tolerance, scales within 1 ulp (a GPU sums in another order)."""
import pytest
import torch

from hvd_qsparse.compression import create
from hvd_qsparse.ops import REFERENCE

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")

SIZES = (1, 7, 4099, (1 << 20) + 3)


@pytest.fixture(scope="module")
def kernels():
    from hvd_qsparse.ops.cupy_ops import CupyOps

    return CupyOps()


def inputs(n):
    gen = torch.Generator().manual_seed(n)
    yield "normal", torch.randn(n, generator=gen)
    yield "ties", torch.randint(-3, 4, (n,), generator=gen).float() * 0.5
    yield "zeros", torch.zeros(n)
    yield "constant", torch.full((n,), -1.25)


def within_ulp(a: torch.Tensor, b: torch.Tensor, ulps: int = 1) -> bool:
    a, b = a.cpu().float(), b.cpu().float()
    return bool(((a.view(torch.int32).long() - b.view(torch.int32).long()).abs() <= ulps).all())


@pytest.mark.parametrize("n", SIZES)
def test_topk_selects_the_reference_set(kernels, n):
    for kind, x in inputs(n):
        for k in sorted({1, max(1, n // 100), max(1, n // 2), n}):
            got = kernels.topk_indices(x.cuda(), k)
            assert torch.equal(got.cpu(), REFERENCE.topk_indices(x, k)), (kind, n, k)


@pytest.mark.parametrize("n", SIZES)
def test_randk_indices_are_the_cpu_reference_s(kernels, n):
    for seed in (0, 12345, (1 << 63) - 1):
        for k in sorted({1, max(1, n // 100), n}):
            expected = REFERENCE.randk_indices(n, k, seed, torch.device("cpu"))
            assert torch.equal(kernels.randk_indices(n, k, seed, torch.device("cuda")).cpu(), expected)
            assert torch.equal(REFERENCE.randk_indices(n, k, seed, torch.device("cuda")).cpu(), expected)


@pytest.mark.parametrize("n", SIZES)
def test_sign_encode_and_decode(kernels, n):
    for kind, x in inputs(n):
        scale, packed, values = kernels.sign_encode(x.cuda())
        ref_scale, ref_packed, ref_values = REFERENCE.sign_encode(x)
        assert within_ulp(scale, ref_scale), kind
        assert torch.equal(packed.cpu(), ref_packed), kind
        torch.testing.assert_close(values.cpu(), ref_values, rtol=2e-7, atol=0)
        decoded = kernels.sign_decode(scale, packed, n)
        torch.testing.assert_close(decoded.cpu(), REFERENCE.sign_decode(scale.cpu(), packed.cpu(), n), rtol=0, atol=0)


@pytest.mark.parametrize("levels", [1, 4, 256])
@pytest.mark.parametrize("n", SIZES)
def test_qsgd_encode_and_decode(kernels, n, levels):
    for kind, x in inputs(n):
        norm, packed, values = kernels.qsgd_encode(x.cuda(), levels, 7)
        ref_norm, ref_packed, ref_values = REFERENCE.qsgd_encode(x, levels, 7)
        assert within_ulp(norm, ref_norm), kind
        differing = (packed.cpu() != ref_packed).sum().item()
        assert differing <= max(1, n // 100000), f"{kind}: {differing} code bytes differ"  # levels at a 1-ulp norm boundary
        torch.testing.assert_close(values.cpu(), ref_values, rtol=1e-6, atol=float(ref_norm) / levels * 1.01)
        decoded = kernels.qsgd_decode(norm, packed, n, levels)
        torch.testing.assert_close(decoded.cpu(), REFERENCE.qsgd_decode(norm.cpu(), packed.cpu(), n, levels), rtol=0, atol=0)


def test_scatter_add_sums_many_ranks_payloads(kernels):
    gen = torch.Generator().manual_seed(3)
    n = 100_003
    indices = torch.cat([torch.randperm(n, generator=gen)[:5000].sort().values for _ in range(8)])
    values = torch.randn(indices.numel(), generator=gen)
    got = kernels.scatter_add(torch.zeros(n, device="cuda"), indices.cuda(), values.cuda())
    torch.testing.assert_close(got.cpu(), REFERENCE.scatter_add(torch.zeros(n), indices, values), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["topk", "topk+sign", "topk+qsgd", "randk+sign"])
@pytest.mark.parametrize("n", SIZES)
def test_error_feedback_step_matches_the_reference(kernels, monkeypatch, name, n):
    """Through the compressor: fused for topk and topk+sign, composed of kernels otherwise."""
    compressor = create(name, ratio=0.05)
    gen = torch.Generator().manual_seed(1)
    g, m = torch.randn(n, generator=gen), 0.1 * torch.randn(n, generator=gen)
    monkeypatch.setenv("HVD_QSPARSE_OPS", "reference")
    ref_payload, _, ref_sel, ref_memory = compressor.compress_with_feedback(g, m.clone(), seed=3)
    monkeypatch.setenv("HVD_QSPARSE_OPS", "cupy")
    payload, _, sel, memory = compressor.compress_with_feedback(g.cuda(), m.cuda(), seed=3)
    if name in ("topk", "topk+sign"):
        assert torch.equal(sel.indices.cpu(), ref_sel.indices)
        for got, expected in zip(compressor.parts(payload.cpu(), n), compressor.parts(ref_payload, n)):
            if got.dtype == torch.uint8:
                assert torch.equal(got, expected)
            else:
                assert within_ulp(got, expected)
    torch.testing.assert_close(memory.cpu(), ref_memory, rtol=1e-5, atol=1e-6)
    decoded = compressor.decompress(payload, compressor.compress(g.cuda(), seed=3)[1])
    torch.testing.assert_close(decoded.cpu(), compressor.decompress(ref_payload, compressor.compress(g, seed=3)[1]),
                               rtol=1e-5, atol=1e-6)


def test_non_finite_input_is_refused_and_memory_untouched(kernels, monkeypatch):
    monkeypatch.setenv("HVD_QSPARSE_OPS", "cupy")
    compressor = create("topk+sign", ratio=0.1)
    g = torch.randn(1000, device="cuda")
    g[17] = float("nan")
    m = torch.zeros(1000, device="cuda")
    with pytest.raises(ValueError, match="NaN or Inf"):
        compressor.compress_with_feedback(g, m, seed=1)
    assert torch.equal(m, torch.zeros_like(m))
