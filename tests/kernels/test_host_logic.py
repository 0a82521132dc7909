"""The kernels' ``__host__ __device__`` logic, run on the CPU by the nvcc-built host harness,
gives the torch reference's selections, bytes and values exactly (odd sizes, ties, all-zero and
constant input)."""
import pytest
import torch

from . import checks

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("kind", checks.INPUTS)
@pytest.mark.parametrize("n", checks.SIZES)
def test_topk_radix_select(harness, n, kind):
    x = checks.make_input(kind, n)
    for k in checks.counts(n):
        checks.check_topk(harness, x, k)


def test_topk_near_the_float_extremes(harness):
    x = torch.tensor([3.4028235e38, -3.4028235e38, 1e-45, -1e-45, 0.0, -0.0, 1.0, 1.1754944e-38] * 3)
    for k in range(1, x.numel() + 1):
        checks.check_topk(harness, x, k)


@pytest.mark.parametrize("n", checks.SIZES)
@pytest.mark.parametrize("seed", [0, 12345, (1 << 63) - 1])
def test_randk_indices(harness, n, seed):
    for k in checks.counts(n):
        checks.check_randk(harness, n, k, seed)


@pytest.mark.parametrize("kind", checks.INPUTS)
@pytest.mark.parametrize("n", checks.SIZES)
def test_scaled_sign(harness, n, kind):
    checks.check_sign(harness, checks.make_input(kind, n))
    checks.check_decode(harness, checks.make_input(kind, n))


@pytest.mark.parametrize("levels", [1, 4, 256])
@pytest.mark.parametrize("kind", checks.INPUTS)
@pytest.mark.parametrize("n", checks.SIZES)
def test_qsgd(harness, n, kind, levels):
    x = checks.make_input(kind, n)
    checks.check_qsgd(harness, x, levels, seed=7)
    checks.check_decode(harness, x, levels)


@pytest.mark.parametrize("width", [1, 2, 3, 5, 7, 8, 9, 13, 16, 21, 31, 32, 33, 63])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 1003])
def test_bit_packing(harness, n, width):
    gen = torch.Generator().manual_seed(width)
    codes = torch.randint(0, 1 << min(width, 62), (n,), generator=gen, dtype=torch.int64)
    codes[0] = (1 << width) - 1  # every bit of the width set in one code
    checks.check_pack(harness, codes, width)


@pytest.mark.parametrize("width", [1, 3, 20])
def test_bit_packing_of_a_large_vector(harness, width):
    n = checks.SIZES[-1]
    codes = torch.randint(0, 1 << width, (n,), generator=torch.Generator().manual_seed(1), dtype=torch.int64)
    checks.check_pack(harness, codes, width)


def test_scatter_add_of_many_ranks_payloads(harness):
    gen = torch.Generator().manual_seed(3)
    n = 1001
    indices = torch.cat([torch.randperm(n, generator=gen)[:37].sort().values for _ in range(5)])
    checks.check_scatter(harness, n, indices, torch.randn(indices.numel(), generator=gen))


@pytest.mark.parametrize("name", ["topk", "topk+sign"])
@pytest.mark.parametrize("kind", checks.INPUTS)
@pytest.mark.parametrize("n", checks.SIZES)
def test_fused_error_feedback(harness, name, n, kind):
    g = checks.make_input(kind, n, seed=1)
    m = checks.make_input("normal", n, seed=2) * 0.1
    for ratio in (0.01, 0.5):
        checks.check_feedback(harness, name, g, m, ratio)
