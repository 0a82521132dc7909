"""Dense quantizers: QSGD (unbiased and scaled) and scaled sign."""
import math

import pytest
import torch

from hvd_qsparse import compression
from hvd_qsparse.compression import create
from hvd_qsparse.ops import aligned, ceil_log2, packed_nbytes, qsgd_beta, unpack_bits

from ._helpers import payload_bytes, randn


def draws(comp, x, n, stream=0, seed0=0):
    """Decoded outputs (float64, flat) for seeds seed0 .. seed0+n-1."""
    out = torch.empty(n, x.numel(), dtype=torch.float64)
    for i in range(n):
        payload, ctx = comp.compress(x, seed=seed0 + i, stream=stream)
        out[i] = comp.decompress(payload, ctx).reshape(-1).double()
    return out


# --- QSGD ---------------------------------------------------------------------------------------

def test_qsgd_beta_formula():
    assert qsgd_beta(16, 1) == 4.0            # min(16, 4)
    assert qsgd_beta(100, 256) == 100 / 256**2
    assert qsgd_beta(10**6, 4) == 1000 / 4    # min(62500, 250)
    assert qsgd_beta(64, 8) == 1.0


@pytest.mark.parametrize("levels", [1, 2, 7])
def test_qsgd_unbiased_mean_over_seeds(levels):
    """E[Q(x)] = x. With N draws each coordinate's mean has std <= ||x|| / (2 s sqrt(N))
    (a Bernoulli step of ||x||/s); tolerance: 5 of those."""
    n = 2000
    comp = compression.QSGDCompressor(levels=levels, unbiased=True)
    x = randn(64, seed=levels)
    mean = draws(comp, x, n).mean(0)
    norm = float(x.double().norm())
    tol = 5 * norm / (2 * levels * math.sqrt(n))
    err = (mean - x.double()).abs().max().item()
    assert err < tol, (err, tol)
    # a biased operator would fail the same check: the default scaled one has mean x / (1 + beta)
    scaled = draws(compression.QSGDCompressor(levels=levels), x, n).mean(0)
    beta = qsgd_beta(64, levels)
    assert (scaled - x.double() / (1 + beta)).abs().max().item() < tol / (1 + beta)
    assert (scaled - x.double()).abs().max().item() > 3 * tol


def test_qsgd_unbiased_via_registry_matches_class():
    x = randn(100, seed=1)
    a = create("qsgd", levels=3, unbiased=True)
    b = compression.QSGDCompressor(levels=3, unbiased=True)
    pa, ca = a.compress(x, seed=9, stream=2)
    pb, cb = b.compress(x, seed=9, stream=2)
    assert torch.equal(pa, pb)
    assert torch.equal(a.decompress(pa, ca), b.decompress(pb, cb))


@pytest.mark.parametrize("case", ["random-s1", "random-s4", "const-s1", "const-s3", "random-s256"])
def test_qsgd_variance_bound(case):
    """E||Q(x) - x||^2 <= beta ||x||^2, beta = qsgd_beta(d, s), estimated over 600 seeds.

    For a constant vector with s = 1 the exact value is (sqrt(d) - 1) ||x||^2, close to the
    bound sqrt(d) ||x||^2; the estimate must be within 10% of it (checks real randomness)."""
    kind, s = case.split("-s")
    s = int(s)
    d = 16 if kind == "const" else 256
    x = torch.full((d,), -0.7) if kind == "const" else randn(d, seed=s)
    comp = compression.QSGDCompressor(levels=s, unbiased=True)
    y = draws(comp, x, 600)
    sq = x.double().pow(2).sum().item()
    mse = (y - x.double()).pow(2).sum(1).mean().item()
    beta = qsgd_beta(d, s)
    assert mse <= beta * sq
    if kind == "const" and s == 1:
        assert abs(mse - (math.sqrt(d) - 1) * sq) < 0.1 * (math.sqrt(d) - 1) * sq


@pytest.mark.parametrize("levels", [1, 5, 256])
def test_qsgd_decoded_on_grid_with_floor_or_ceil_levels(levels):
    x = randn(997, seed=levels)
    comp = compression.QSGDCompressor(levels=levels, unbiased=True)
    payload, ctx = comp.compress(x, seed=3)
    y = comp.decompress(payload, ctx).double()
    norm_part = comp.parts(payload, 997)[0]
    assert norm_part.dtype == torch.float32 and norm_part.numel() == 1
    norm = float(norm_part)
    assert math.isclose(norm, x.double().norm().item(), rel_tol=1e-6)
    lv = y.abs() * levels / norm
    assert torch.allclose(lv, lv.round(), atol=1e-3)
    lv = lv.round()
    exact = x.double().abs() * levels / x.double().norm()
    assert torch.all((lv == exact.floor()) | (lv == exact.ceil()))
    assert torch.all(lv <= levels)
    nz = y != 0
    assert torch.equal(torch.sign(y[nz]), torch.sign(x.double()[nz]))


def test_qsgd_levels_one():
    x = randn(333, seed=5)
    comp = create("qsgd", levels=1, unbiased=True)
    payload, ctx = comp.compress(x, seed=1)
    y = comp.decompress(payload, ctx)
    norm = float(comp.parts(payload, 333)[0])
    assert set(y.unique().tolist()) <= {-norm, 0.0, norm}
    assert comp.parts(payload, 333)[1].numel() == packed_nbytes(333, 2)  # sign + 1 level bit
    assert comp.analytic_bits(333) == 32 + 2 * 333
    # scaled default with s = 1: values are +-norm / (1 + beta) or 0
    scaled = create("qsgd", levels=1)
    ys = scaled.decompress(*scaled.compress(x, seed=1))
    assert torch.allclose(ys, y / (1 + qsgd_beta(333, 1)))


def test_qsgd_one_hot_is_exact():
    x = torch.zeros(50)
    x[17] = -3.25
    for s in (1, 4, 256):
        comp = compression.QSGDCompressor(levels=s, unbiased=True)
        y = comp.decompress(*comp.compress(x, seed=0))
        assert torch.equal(y, x)


def test_qsgd_zero_vector():
    comp = compression.QSGDCompressor(levels=8, unbiased=True)
    y = comp.decompress(*comp.compress(torch.zeros(10), seed=0))
    assert torch.equal(y, torch.zeros(10))


def test_qsgd_deterministic_given_seed_and_stream():
    x = randn(1000, seed=2)
    comp = create("qsgd", levels=4)
    p1, c1 = comp.compress(x, seed=77, stream=3)
    p2, c2 = comp.compress(x, seed=77, stream=3)
    assert torch.equal(p1, p2)
    assert c1 == c2 and c1.seed == 77
    # a different stream (rank) gives different rounding noise, same context
    p3, c3 = comp.compress(x, seed=77, stream=4)
    assert c3 == c1
    assert not torch.equal(p1, p3)
    # a different seed too
    p4, _ = comp.compress(x, seed=78, stream=3)
    assert not torch.equal(p1, p4)
    # streams are independent rounding: the fraction of coordinates rounded the same way is
    # far from 1
    y1, y3 = comp.decompress(p1, c1), comp.decompress(p3, c3)
    assert (y1 != y3).float().mean() > 0.1


def test_qsgd_default_is_unbiased_over_one_plus_beta():
    x = randn(500, seed=8)
    for s in (1, 3, 256):
        unb = compression.QSGDCompressor(levels=s, unbiased=True)
        sc = compression.QSGDCompressor(levels=s)
        assert sc.unbiased is False
        pu, cu = unb.compress(x, seed=5, stream=1)
        ps, cs = sc.compress(x, seed=5, stream=1)
        assert torch.equal(pu, ps)  # same bytes on the wire; only decoding differs
        assert torch.allclose(sc.decompress(ps, cs), unb.decompress(pu, cu) / (1 + qsgd_beta(500, s)),
                              rtol=1e-6, atol=0)


@pytest.mark.parametrize("levels,bits", [(1, 2), (2, 3), (3, 3), (4, 4), (255, 9), (256, 10)])
def test_qsgd_bits_per_entry(levels, bits):
    comp = create("qsgd", levels=levels)
    d = 1001
    assert bits == 1 + ceil_log2(levels + 1)
    assert comp.analytic_bits(d) == 32 + d * bits
    payload, _ = comp.compress(randn(d), seed=0)
    assert payload_bytes(payload) == 4 + aligned(packed_nbytes(d, bits))


# --- scaled sign --------------------------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 7, 8, 9, 1000])
def test_sign_decoded_is_scaled_sign_exactly(d):
    x = randn(d, seed=d)
    if d >= 7:
        x[3] = 0.0
        x[5] = -0.0
    comp = create("sign")
    payload, ctx = comp.compress(x)
    y = comp.decompress(payload, ctx)
    scale = (x.abs().sum(dtype=torch.float64) / d).float().reshape(1)  # the codec's reduction: float64, then fp32
    expected = torch.where(x < 0, -scale, scale)     # sign(0) = +1
    assert torch.equal(y, expected)
    assert math.isclose(float(scale), x.double().abs().sum().item() / d, rel_tol=1e-6)
    scale_part, bits = comp.parts(payload, d)
    assert torch.equal(scale_part, scale)
    assert bits.numel() == math.ceil(d / 8)          # 8 signs per byte
    assert torch.equal(unpack_bits(bits, d, 1), (x < 0).long())  # bit set only for negatives
    assert payload_bytes(payload) == 4 + aligned(math.ceil(d / 8))


def test_sign_zero_and_half_inputs():
    comp = create("sign")
    y = comp.decompress(*comp.compress(torch.zeros(12)))
    assert torch.equal(y, torch.zeros(12))
    x = randn(40, seed=1, dtype=torch.float16)
    y = comp.decompress(*comp.compress(x))
    assert y.dtype == torch.float16
    scale = x.float().abs().sum() / 40
    assert torch.equal(y, torch.where(x < 0, -scale, scale).half())
