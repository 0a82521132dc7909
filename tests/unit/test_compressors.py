"""Every registered compressor: registry, round trips, decompress_sum, payload views."""
import pytest
import torch

from hvd_qsparse import create_compressor, available_compressors
from hvd_qsparse.compression import Compressor, Context, SparseCompressor, available, create, describe
from hvd_qsparse.ops import join_parts

from ._helpers import ALL_NAMES, EXPECTED_NAMES, SUMMABLE, make, randn

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
SHAPE = (3, 5, 7)


# --- registry ------------------------------------------------------------------------------------

def test_available_names():
    assert set(available()) == EXPECTED_NAMES
    assert len(available()) == len(set(available()))
    assert available_compressors() == available()
    assert set(SUMMABLE) == {"none", "fp16"}


@pytest.mark.parametrize("name", ALL_NAMES)
def test_create_builds_named_compressor(name):
    comp = make(name)
    assert isinstance(comp, Compressor)
    assert comp.name == name
    assert isinstance(comp, SparseCompressor) == (name.split("+")[0] in ("topk", "randk"))
    assert create_compressor(name).name == name
    info = describe(name)
    assert info["name"] == name
    assert info["bits_per_entry"] == create(name).analytic_bits(1 << 20) / (1 << 20)


def test_create_params_and_defaults():
    comp = create("topk+qsgd", ratio=0.1, levels=8)
    assert comp.params() == {"ratio": 0.1, "levels": 8, "unbiased": False}
    assert create("topk").params() == {"ratio": 0.01}
    assert create("qsgd").params() == {"levels": 256, "unbiased": False}
    assert create("topk", ratio=None).params() == {"ratio": 0.01}   # None = default
    # shared CLI parameters are ignored by parts that take neither
    assert create("sign", ratio=0.5, levels=3).params() == {}
    assert create("qsgd", ratio=0.5, levels=3).params() == {"levels": 3, "unbiased": False}
    assert "ratio=0.1" in repr(comp) and "levels=8" in repr(comp)


# --- round trips -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_round_trip_shape_dtype(name, dtype):
    comp = make(name, ratio=0.2, levels=4)
    x = randn(*SHAPE, seed=1, dtype=dtype)
    payload, ctx = comp.compress(x, seed=5, stream=1)
    assert isinstance(ctx, Context)
    assert ctx.shape == x.shape and ctx.dtype == dtype and ctx.seed == 5 and ctx.numel == x.numel()
    if comp.summable:
        assert payload.shape == x.shape and payload.is_floating_point()
    else:
        assert payload.dtype == torch.uint8 and payload.dim() == 1
    y = comp.decompress(payload, ctx)
    assert y.shape == x.shape
    assert y.dtype == dtype
    assert torch.isfinite(y).all()
    # decompression is a pure function of (payload, ctx)
    assert torch.equal(comp.decompress(payload, ctx), y)
    # and compression of (x, seed, stream) is deterministic
    assert torch.equal(comp.compress(x, seed=5, stream=1)[0], payload)
    # some signal gets through, nothing is invented: error below ||x||, output nonzero
    err = (y.double() - x.double()).norm()
    assert err < x.double().norm()
    assert y.double().abs().sum() > 0


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_none_is_exact(dtype):
    comp = create("none")
    x = randn(*SHAPE, seed=2, dtype=dtype)
    y = comp.decompress(*comp.compress(x))
    if dtype == torch.float64:
        # the 'none' payload is dense fp32 (docs/algorithms.md): exact up to fp32 rounding
        assert torch.equal(y, x.float().double())
    else:
        assert torch.equal(y, x)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_fp16_within_half_precision(dtype):
    comp = create("fp16")
    x = randn(*SHAPE, seed=3, dtype=dtype)
    payload, ctx = comp.compress(x)
    assert payload.dtype == torch.float16
    y = comp.decompress(payload, ctx)
    assert torch.allclose(y.double(), x.double(), rtol=2**-10, atol=1e-6)
    assert torch.equal(y.double(), x.half().double().to(dtype).double())


@pytest.mark.parametrize("name", ["topk", "randk"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sparsifier_ratio_one_exact(name, dtype):
    comp = create(name, ratio=1.0)
    x = randn(*SHAPE, seed=4, dtype=dtype)
    y = comp.decompress(*comp.compress(x, seed=1))
    expected = x.float().double() if dtype == torch.float64 else x.double()
    assert torch.equal(y.double(), expected)


@pytest.mark.parametrize("sparsifier", ["topk", "randk"])
@pytest.mark.parametrize("quantizer", ["qsgd", "sign"])
def test_sparsifier_ratio_one_equals_dense_quantizer(sparsifier, quantizer):
    """Q o Comp_k with k = d decodes exactly like Q alone (same seed and stream)."""
    comp = create(f"{sparsifier}+{quantizer}", ratio=1.0, levels=5)
    dense = create(quantizer, levels=5)
    x = randn(40, seed=6)
    y = comp.decompress(*comp.compress(x, seed=3, stream=2))
    z = dense.decompress(*dense.compress(x, seed=3, stream=2))
    assert torch.equal(y, z)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_non_contiguous_and_scalar_inputs(name):
    comp = make(name, ratio=0.5, levels=4)
    x = randn(6, 4, seed=7).t()
    assert not x.is_contiguous()
    y = comp.decompress(*comp.compress(x, seed=2))
    y_ref = comp.decompress(*comp.compress(x.contiguous(), seed=2))
    assert torch.equal(y, y_ref)
    s = torch.tensor(-1.5)
    ys = comp.decompress(*comp.compress(s, seed=2))
    assert ys.shape == torch.Size([])
    if name in ("none", "fp16", "topk", "randk", "sign", "topk+sign", "randk+sign",
                "bsign", "topk+bsign", "randk+bsign"):
        assert float(ys) == -1.5


@pytest.mark.parametrize("name", ALL_NAMES)
def test_compress_does_not_modify_input(name):
    comp = make(name)
    x = randn(100, seed=8)
    before = x.clone()
    payload, ctx = comp.compress(x, seed=1)
    comp.decompress(payload, ctx)
    assert torch.equal(x, before)


# --- decompress_sum -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_NAMES)
def test_decompress_sum_equals_sum_of_decompress(name):
    comp = make(name, ratio=0.1, levels=8)
    shape = (10, 30)
    payloads, total = [], torch.zeros(300, dtype=torch.float64)
    for rank in range(4):  # 4 ranks share the seed, each its own stream and data
        x = randn(*shape, seed=100 + rank)
        payload, ctx = comp.compress(x, seed=21, stream=rank)
        payloads.append(payload)
        total += comp.decompress(payload, ctx).reshape(-1).double()
    summed = comp.decompress_sum(payloads, ctx)
    assert summed.dtype == torch.float32
    assert summed.shape == (300,)
    assert torch.allclose(summed.double(), total, rtol=1e-6, atol=1e-6)
    assert summed.abs().sum() > 0


def test_decompress_sum_topk_overlapping_indices_accumulate():
    comp = create("topk", ratio=0.1)
    x = torch.zeros(20)
    x[3], x[7] = 5.0, -4.0
    p1, ctx = comp.compress(x)
    p2, _ = comp.compress(2 * x)
    assert torch.equal(comp.decompress_sum([p1, p2], ctx), 3 * x)


# --- payloads as bytes and in fused buffers -------------------------------------------------------

@pytest.mark.parametrize("name", ALL_NAMES)
def test_decompress_from_byte_view_and_fused_buffer(name):
    comp = make(name, ratio=0.3, levels=3)
    xs = [randn(7, seed=1), randn(3, 11, seed=2), randn(1, seed=3)]  # odd sizes on purpose
    pcs = [comp.compress(x, seed=9 + i) for i, x in enumerate(xs)]
    expected = [comp.decompress(p, c) for p, c in pcs]
    for (p, c), y in zip(pcs, expected):
        assert torch.equal(comp.decompress(p.reshape(-1).view(torch.uint8), c), y)
    fused = join_parts([p for p, _ in pcs])  # each payload padded to the alignment
    offset = 0
    for (p, c), y in zip(pcs, expected):
        n = comp.payload_nbytes(c.numel)
        assert torch.equal(comp.decompress(fused[offset: offset + n], c), y)
        offset += n
    assert offset == fused.numel()
